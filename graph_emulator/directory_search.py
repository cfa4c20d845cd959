"""``$search`` on the directory's users, as Microsoft Graph answers it.

What Learn says, and what is kept here:

- "Use the $search query parameter" (https://learn.microsoft.com/en-us/graph/search-query-parameter),
  section "Using $search on directory object collections": the value is one or more clauses
  ``"property:value"``, each in double quotes, joined by ``AND`` / ``OR``; ``displayName`` and
  ``description`` are tokenized (the value is split into words on spaces, punctuation and
  casing — "AdeleVance" is "Adele" and "Vance" — and a clause matches when a word *starts
  with* the searched text); any other string property is matched like ``$filter``'s
  ``startswith`` on the whole value.
- Directory objects support ``$search`` only in *advanced queries*: without the header
  ``ConsistencyLevel: eventual`` Graph answers 400 ``Request_UnsupportedQuery``
  (https://learn.microsoft.com/en-us/graph/aad-advanced-queries); ``$count=true`` adds
  ``@odata.count`` and is itself an advanced query (the header again).
- "List users" (https://learn.microsoft.com/en-us/graph/api/user-list?view=graph-rest-1.0):
  ``GET /users?$search="displayName:wa"`` with ``ConsistencyLevel: eventual``.
"""

from __future__ import annotations

import re

from .errors import GraphError

# String properties of a user that $search takes (the v1.0 user resource's searchable ones).
SEARCHABLE = {"displayName": "displayName", "givenName": "givenName", "surname": "surname", "mail": "mail",
              "userPrincipalName": "userPrincipalName", "jobTitle": "jobTitle", "officeLocation": "officeLocation",
              "mailNickname": "mailNickname"}
TOKENIZED = {"displayName", "description"}
_CLAUSE = re.compile(r'\s*"([^"]*)"\s*')
_OPERATOR = re.compile(r"\s*(AND|OR)\s*")
# Word boundaries of the tokenizer: anything not a letter or digit, a lower→upper case change, a
# letter↔digit change.
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[^\W\d_]+", re.UNICODE)


def needs_advanced_query(req) -> bool:
    """Whether the request uses an advanced query option ($search, $count=true) of directory objects."""
    return req.q("search") is not None or (req.q("count") or "").lower() == "true"


def check_consistency(req) -> None:
    if (req.headers.get("ConsistencyLevel") or "").strip().lower() == "eventual":
        return
    if req.q("search") is not None:
        raise GraphError(400, "Request_UnsupportedQuery",
                         "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'")
    raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")


def tokens(value: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(value or "")]


def _clause(text: str):
    prop, sep, value = text.partition(":")
    if not sep or not prop.strip():
        raise GraphError(400, "Request_UnsupportedQuery", "Syntax error: a $search clause on directory objects is \"property:value\".")
    prop = prop.strip()
    key = next((k for k in SEARCHABLE if k.lower() == prop.lower()), None)
    if key is None:
        raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'.")
    needle = value.strip().lower()
    if key in TOKENIZED:
        words = [w for w in tokens(needle)] or [needle]

        def test(user: dict) -> bool:
            have = tokens(user.get(key) or "")
            return all(any(t.startswith(w) for t in have) for w in words)
    else:
        def test(user: dict) -> bool:
            return (user.get(key) or "").lower().startswith(needle)
    return test


def compile_search(expr: str):
    """A predicate over a user's JSON for a ``$search`` value; 400 for anything Graph refuses."""
    expr = (expr or "").strip()
    pos, groups, current = 0, [], []
    expect_clause = True
    while pos < len(expr):
        if expect_clause:
            m = _CLAUSE.match(expr, pos)
            if not m:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 f"Syntax error: character '{expr[pos]}' is not valid at position {pos} in '{expr}'.")
            current.append(_clause(m.group(1)))
        else:
            m = _OPERATOR.match(expr, pos)
            if not m:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 f"Syntax error: character '{expr[pos]}' is not valid at position {pos} in '{expr}'.")
            if m.group(1) == "OR":  # AND binds tighter than OR
                groups.append(current)
                current = []
        pos, expect_clause = m.end(), not expect_clause
    if expect_clause:
        raise GraphError(400, "Request_UnsupportedQuery", f"Syntax error: the $search value '{expr}' is incomplete.")
    groups.append(current)

    def test(user: dict) -> bool:
        return any(all(c(user) for c in group) for group in groups)

    return test
