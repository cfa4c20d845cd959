"""People search for the booking form's attendee picker: the product's own people merged with
each active tenant's directory, read through Graph's ``GET /users?$search``.

Graph (Learn, "List users": https://learn.microsoft.com/en-us/graph/api/user-list?view=graph-rest-1.0,
and "Use the $search query parameter": https://learn.microsoft.com/en-us/graph/search-query-parameter):
``$search`` on users is an advanced query, so every request carries ``ConsistencyLevel:
eventual`` (Graph answers 400 without it); the value is ``"displayName:ali" OR "mail:ali"``
(each clause in double quotes, so a double quote or backslash in what was typed is dropped);
``$select`` names v1.0 user properties only; ``$top`` asks one small page and no further page
is read (a picker shows a handful).

The credential: app-only when the provider has it (application ``User.Read.All``), else the
provider's system credential. A tenant's answer is cached in Django's cache (Redis in
production) per provider and query for ``CACHE_SECONDS``; a tenant that can't answer is
logged, not cached, and the search still returns the product's own people.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass

from django.core.cache import cache
from django.db.models import Q

from exchange_auth.credentials.reach import has_app_credential
from exchange_auth.graph import GraphError
from exchange_auth.providers import active_providers
from reservations import selectors
from workplace.models import Room

from .common.clients import credential_client, system_client

logger = logging.getLogger("calendar_sync.people")

CACHE_SECONDS = 300
PAGE = 10
MIN_QUERY = 2
MAX_QUERY = 64
SELECT = "id,displayName,mail,userPrincipalName,jobTitle"
EVENTUAL = {"ConsistencyLevel": "eventual"}


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    source: str  # "user": has an account in the product; "directory": found in a tenant's directory only
    job_title: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def clean_query(text: str) -> str:
    """What is searched: one line, no double quotes or backslashes (they would end Graph's clause)."""
    text = " ".join((text or "").replace('"', " ").replace("\\", " ").split())
    return text[:MAX_QUERY]


def search_expression(query: str) -> str:
    return f'"displayName:{query}" OR "mail:{query}"'


def _cache_key(provider, query: str) -> str:
    digest = hashlib.sha256(query.lower().encode()).hexdigest()[:32]
    return f"calendar_sync:people:{provider.pk}:{provider.tenant_id}:{digest}"


def _client(provider):
    return credential_client(provider, "app") if has_app_credential(provider) else system_client(provider)


def tenant_people(provider, query: str) -> list[dict] | None:
    """The tenant's users matching ``query`` ({name, email, job_title}), cached; None when Graph can't answer."""
    key = _cache_key(provider, query)
    hit = cache.get(key)
    if hit is not None:
        return hit
    try:
        body = _client(provider).get("/users", params={
            "$search": search_expression(query), "$select": SELECT, "$top": str(PAGE), "$count": "true",
        }, headers=EVENTUAL)
    except GraphError as exc:
        logger.warning("People search in %s failed: %s", provider.name, exc)
        return None
    found = []
    for user in (body or {}).get("value", [])[:PAGE]:
        email = (user.get("mail") or "").strip().lower()
        if email:
            found.append({"name": user.get("displayName") or email, "email": email, "job_title": user.get("jobTitle") or ""})
    cache.set(key, found, CACHE_SECONDS)
    return found


def people_search(query: str, *, limit: int = PAGE) -> tuple[list[Person], bool]:
    """(people matching ``query``, whether every tenant's directory answered). The product's own
    people first, then the directories' others; service accounts and room mailboxes left out."""
    query = clean_query(query)
    if len(query) < MIN_QUERY:
        return [], True
    people: dict[str, Person] = {}
    for user in selectors.people_matching(query=query, limit=limit):
        people.setdefault(user.email.lower(), Person(name=user.get_full_name() or user.get_username(), email=user.email.lower(), source="user"))
    providers = active_providers()
    service = {e.lower() for p in providers for e in (p.delegated_user_email, p.organizer_account) if e}
    answered = True
    directory: list[dict] = []
    for provider in providers:
        found = tenant_people(provider, query)
        if found is None:
            answered = False
            continue
        directory.extend(found)
    rooms = set()
    if directory:
        named = Q()
        for person in directory:
            named |= Q(mailbox__iexact=person["email"])
        rooms = {m.lower() for m in Room.objects.filter(named).values_list("mailbox", flat=True)}
    for person in directory:
        email = person["email"]
        if email in service or email in rooms:
            continue
        if email in people:
            if not people[email].job_title and person["job_title"]:
                known = people[email]
                people[email] = Person(name=known.name, email=email, source=known.source, job_title=person["job_title"])
            continue
        people[email] = Person(name=person["name"], email=email, source="directory", job_title=person["job_title"])
    return list(people.values())[:limit], answered
