"""Which calendar provider serves a room or a mailbox (SPEC §7 "Several providers").

Each building may name its provider (``workplace.Building.calendar_provider``, a string
reference: workplace imports nothing of ours); a building without one, and everything
that belongs to no building, is served by the **default provider**: the active provider
flagged ``is_default`` (at most one: a partial unique constraint), else — an instance with
one active provider, as before — the only active one. Several providers may be active
at once (two Microsoft 365 tenants, or a region on another cloud)."""

from __future__ import annotations

import functools

from django.core.cache import cache
from django.db import connection, transaction

from exchange_auth.models import CalendarProvider

# The portal's header (the Outlook badge) names the default provider on every page: it reads
# it from the shared cache, dropped whenever a provider is saved or deleted (signals connected
# in apps.py) and, for edits that bypass the signals (a queryset update), after this lifetime.
DEFAULT_PROVIDER_CACHE_KEY = "exchange_auth:default_provider"
DEFAULT_PROVIDER_CACHE_SECONDS = 60
_NONE = "none"  # cached "no active provider" (None is the cache's miss)


class NoActiveProvider(LookupError):
    """No calendar provider is active: nothing syncs until an admin activates one."""


def active_providers() -> list[CalendarProvider]:
    """Every active provider, the default first."""
    return list(CalendarProvider.objects.filter(active=True).order_by("-is_default", "name"))


def default_provider() -> CalendarProvider | None:
    """The active provider flagged default; else the first active one (by name); else None."""
    if connection.vendor == "postgresql":
        return _first_provider("default")
    return CalendarProvider.objects.filter(active=True).order_by("-is_default", "name").first()


@functools.cache
def _provider_sql(which: str) -> str:
    """``default_provider``'s and ``provider_for_building``'s reads written once from the
    model's metadata: each outbound push reads its room's provider, and composing the ORM's
    statement cost more than running it (issue 17). Only identifiers are formatted in."""
    quote = connection.ops.quote_name
    meta = CalendarProvider._meta
    column = {f.name: quote(f.column) for f in meta.concrete_fields}
    select = f"SELECT {', '.join(column.values())} FROM {quote(meta.db_table)} WHERE {column['active']}"  # noqa: S608
    if which == "default":
        return f"{select} ORDER BY {column['is_default']} DESC, {column['name']} ASC LIMIT 1"
    return f"{select} AND {quote(meta.pk.column)} = %s"


def _first_provider(which: str, *params) -> CalendarProvider | None:
    """PostgreSQL: the row ``_provider_sql(which)`` finds, as the ORM builds it (each field's
    database converters, then ``from_db``); None when none."""
    with connection.cursor() as cursor:
        cursor.execute(_provider_sql(which), params)
        row = cursor.fetchone()
    if row is None:
        return None
    fields = CalendarProvider._meta.concrete_fields
    values = list(row)
    for i, field in enumerate(fields):
        for convert in field.get_db_converters(connection):
            values[i] = convert(values[i], None, connection)
    return CalendarProvider.from_db(connection.alias, [f.attname for f in fields], values)


def active_provider() -> CalendarProvider | None:
    """The default provider (what callers that work on no particular room or mailbox use)."""
    return default_provider()


def cached_default_provider_id() -> int | None:
    """The id of ``default_provider()`` through the shared cache, for the portal's header
    (which only asks whether the user connected to it). Only the id is cached: no secret or
    token cache of the row reaches Redis, and callers that talk to Graph read the row itself.
    Filled only outside a transaction, so an uncommitted edit is never cached."""
    found = cache.get(DEFAULT_PROVIDER_CACHE_KEY)
    if found is not None:
        return None if found == _NONE else found
    provider_id = CalendarProvider.objects.filter(active=True).order_by("-is_default", "name").values_list("pk", flat=True).first()
    if not transaction.get_connection().in_atomic_block:
        cache.set(DEFAULT_PROVIDER_CACHE_KEY, _NONE if provider_id is None else provider_id, DEFAULT_PROVIDER_CACHE_SECONDS)
    return provider_id


def invalidate_cached_provider(**_kwargs) -> None:
    """A provider was saved or deleted: drop the cached default now and when the edit commits
    (a read in between may have cached the old row)."""
    cache.delete(DEFAULT_PROVIDER_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(DEFAULT_PROVIDER_CACHE_KEY))


def provider_for_building(building) -> CalendarProvider | None:
    """The building's own provider when it names an active one, else the default provider."""
    provider_id = getattr(building, "calendar_provider_id", None)
    if provider_id:
        if connection.vendor == "postgresql":
            found = _first_provider("by_id", provider_id)
        else:
            found = CalendarProvider.objects.filter(pk=provider_id, active=True).first()
        if found is not None:
            return found
    return default_provider()


def provider_for_room(room) -> CalendarProvider | None:
    """The provider of the room's building (else the default one)."""
    if room is None:
        return default_provider()
    return provider_for_building(room.building)


def provider_for_mailbox(mailbox: str, *, rooms=None) -> CalendarProvider | None:
    """The provider a mailbox belongs to: the provider of the room with that mailbox (the
    caller passes ``rooms``, a queryset or list of objects with ``mailbox`` and ``building``:
    exchange_auth knows no rooms), or the provider whose delegated user or organizer
    account it is, else the default provider."""
    mailbox = (mailbox or "").lower()
    if rooms is not None:
        for room in rooms:
            if (room.mailbox or "").lower() == mailbox:
                return provider_for_room(room)
    for provider in active_providers():
        if mailbox and mailbox in {(provider.organizer_account or "").lower(), (provider.delegated_user_email or "").lower(),
                                   (provider.delegated_connected_as or "").lower()}:
            return provider
    return default_provider()


def require_active_provider() -> CalendarProvider:
    provider = active_provider()
    if provider is None:
        raise NoActiveProvider("No calendar provider is active. An admin activates one under Calendar providers.")
    return provider


def provider_named(name: str | None) -> CalendarProvider | None:
    """The provider a command names (``--provider``), else the default one; None when neither exists."""
    if name:
        return CalendarProvider.objects.filter(name=name).first()
    return active_provider()
