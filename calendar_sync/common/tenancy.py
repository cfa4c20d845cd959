"""Which calendar provider (Microsoft 365 tenant) a room or a mailbox belongs to, with the
rooms' buildings at hand (``exchange_auth.providers`` knows no rooms: it is told them).

A room belongs to its building's provider, else to the default provider; a mailbox that is
no room's belongs to the provider whose service account it is, else to the default one."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from exchange_auth import providers
from workplace.models import Room


def provider_for_room(room):
    return providers.provider_for_room(room)


def provider_for_mailbox(mailbox: str):
    rooms = Room.objects.select_related("building").filter(mailbox__iexact=mailbox or "")[:1] if mailbox else []
    return providers.provider_for_mailbox(mailbox, rooms=rooms)


def rooms_of(provider) -> QuerySet:
    """The rooms ``provider`` serves: those of the buildings naming it and, for the default
    provider, those of buildings naming none (or an inactive one)."""
    if provider is None:
        return Room.objects.none()
    own = Q(building__calendar_provider=provider)
    default = providers.default_provider()
    if default is not None and default.pk == provider.pk:
        own |= Q(building__calendar_provider__isnull=True) | Q(building__calendar_provider__active=False)
    return Room.objects.filter(own)
