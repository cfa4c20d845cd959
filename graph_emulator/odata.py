"""OData query options as Graph's collections take them: $top/$skip paging with
@odata.nextLink, $select, a light $filter and $orderby."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from .errors import GraphError
from .http_types import GReq
from .timeutil import prefer_pagesize


def int_param(req: GReq, name: str, default: int | None, lo: int = 0, hi: int = 1000) -> int | None:
    raw = req.q(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query parameter ${name}.") from exc
    if value < lo or value > hi:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query parameter ${name}.")
    return value


def select_fields(req: GReq) -> list[str] | None:
    s = req.q("select")
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


_FILTER_CLAUSE = re.compile(
    r"^\s*(?:(startswith)\(\s*([\w/]+)\s*,\s*'((?:[^']|'')*)'\s*\)|([\w/]+)\s+(eq|ne|ge|gt|le|lt)\s+('(?:[^']|'')*'|true|false|null|[\w:.\-+]+))\s*$",
    re.IGNORECASE,
)


def compile_filter(expr: str | None):
    """A light OData $filter: clauses joined by 'and' (eq/ne/ge/gt/le/lt, startswith)."""
    if not expr:
        return None
    clauses = []
    for part in re.split(r"\s+and\s+", expr.strip(), flags=re.IGNORECASE):
        m = _FILTER_CLAUSE.match(part)
        if not m:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
        if m.group(1):
            clauses.append(("startswith", m.group(2), m.group(3).replace("''", "'")))
        else:
            raw = m.group(6)
            if raw.startswith("'"):
                value = raw[1:-1].replace("''", "'")
            elif raw.lower() in ("true", "false"):
                value = raw.lower() == "true"
            elif raw.lower() == "null":
                value = None
            else:
                value = raw
            clauses.append((m.group(5).lower(), m.group(4), value))

    def get(obj: dict, path: str):
        cur = obj
        for seg in path.split("/"):
            if not isinstance(cur, dict):
                return None
            match = next((k for k in cur if k.lower() == seg.lower()), None)
            cur = cur.get(match) if match else None
        return cur

    def test(obj: dict) -> bool:
        for op, path, value in clauses:
            actual = get(obj, path)
            if op == "startswith":
                if not isinstance(actual, str) or not actual.lower().startswith(value.lower()):
                    return False
                continue
            a, v = actual, value
            if isinstance(a, str) and isinstance(v, str):
                a, v = a.lower(), v.lower()
                if re.match(r"\d{4}-\d{2}-\d{2}T", a) and re.match(r"\d{4}-\d{2}-\d{2}T", v):
                    a, v = a.rstrip("z")[:19], v.rstrip("z")[:19]
            try:
                ok = {"eq": a == v, "ne": a != v, "ge": a is not None and a >= v, "gt": a is not None and a > v,
                      "le": a is not None and a <= v, "lt": a is not None and a < v}[op]
            except TypeError:
                ok = False
            if not ok:
                return False
        return True

    return test


def page(req: GReq, items: list, default_size: int, context: str, max_size: int = 999) -> dict:
    """One page of ``items`` ($top, else Prefer: odata.maxpagesize, else ``default_size``) and,
    when more are left, the ``@odata.nextLink`` that fetches the next page with $skip, as Graph
    pages its collections: https://learn.microsoft.com/en-us/graph/paging"""
    size = int_param(req, "top", None, 1, max_size) or prefer_pagesize(req.headers.get("Prefer")) or default_size
    size = max(1, min(size, max_size))
    skip = int_param(req, "skip", 0, 0, 10**9) or 0
    body = {"@odata.context": context, "value": items[skip:skip + size]}
    if skip + size < len(items):
        q = {k: v for k, v in req.query.items() if k not in ("$skip", "skip")}
        q["$skip"] = str(skip + size)
        if "$top" not in q and "top" not in q:
            q["$top"] = str(size)
        body["@odata.nextLink"] = f"{req.base}/v1.0{req.path}?" + urlencode(q, quote_via=quote, safe="$,'@:/")
    return body


def order(req: GReq, items: list) -> list:
    expr = req.q("orderby")
    if not expr:
        return items
    field_name, _, direction = expr.strip().partition(" ")
    keys = field_name.split("/")

    def key(i):
        cur = i
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        return (cur is None, str(cur) if cur is not None else "")

    return sorted(items, key=key, reverse=direction.strip().lower() == "desc")
