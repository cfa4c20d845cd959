"""iCalendar feeds at secret URLs (SPEC §5 "Feeds"): services and selectors.

* An employee's feed: the reservations they made or that are for them.
* A room's feed: the room's reservations. Subjects are shown only when
  ``CALENDAR_FEED_ROOM_SUBJECTS`` is on and the room shows subjects (``Room.show_subjects``);
  otherwise every event reads "Reserved" and carries nothing about who booked it.

Both list the active reservations, and those cancelled (an Outlook meeting ended early at a
room panel too), rejected or released for want of a check-in in the last
``RECENTLY_CANCELLED_DAYS``, as STATUS:CANCELLED with the UID they had and a higher SEQUENCE,
so calendar apps drop them instead of keeping a stale event.

Both cover ``CALENDAR_FEED_PAST_DAYS`` back and ``CALENDAR_FEED_FUTURE_DAYS`` ahead.

The token in the URL is 32 random bytes (``secrets.token_urlsafe``). It is stored as its
SHA-256 (the lookup key) and encrypted with ``exchange_auth.crypto`` (so the owner can be
shown the link again, with a copy button, without a reset). Neither reveals a working URL
from a database dump alone. Rotating replaces both in place: the old URL stops at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from exchange_auth import crypto
from reservations.models import ACTIVE_STATES, CalendarFeed, Reservation, State
from reservations.selectors import reservation_queryset
from workplace.models import Room

TOKEN_BYTES = 32
# token_urlsafe(32) is 43 characters; anything else can't be ours and isn't looked up.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
RECENTLY_CANCELLED_DAYS = 30
# last_accessed_at is written at most this often: calendar apps poll every few minutes.
ACCESS_RECORD_INTERVAL = dt.timedelta(minutes=10)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class FeedLink:
    feed: CalendarFeed
    token: str
    created: bool


# --- services -----------------------------------------------------------------------------------


def calendar_feed_rotate(*, user: AbstractBaseUser | None = None, room: Room | None = None) -> FeedLink:
    """Create the feed of ``user`` or ``room``, or give it a new token (the old URL stops
    working when this commits). Returns the token: it is the only time the caller gets it
    without decrypting."""
    if (user is None) == (room is None):
        raise ValueError("A feed belongs to a user or to a room.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    secret = {"token_hash": token_hash(token), "token_encrypted": crypto.encrypt(token), "content_hash": "", "content_changed_at": None}
    owner = {"user": user} if user is not None else {"room": room}
    # Not durable: Django admin's add view already runs in a transaction. Nothing happens
    # after commit here, so joining the caller's transaction is safe.
    with transaction.atomic():
        # update_or_create locks an existing row and retries the read when a concurrent
        # create wins the unique constraint, so two clicks never make two feeds.
        feed, created = CalendarFeed.objects.update_or_create(
            **owner, defaults={**secret, "rotated_at": timezone.now()}, create_defaults=secret,
        )
    return FeedLink(feed=feed, token=token, created=created)


def calendar_feed_delete(*, user: AbstractBaseUser | None = None, room: Room | None = None) -> bool:
    """Turn the feed off: its URL answers 404 from now on."""
    owner = {"user": user} if user is not None else {"room": room}
    deleted, _ = CalendarFeed.objects.filter(**owner).delete()
    return bool(deleted)


def calendar_feed_record_fetch(*, feed: CalendarFeed, content_hash: str, now: dt.datetime) -> None:
    """Note the fetch (at most every ``ACCESS_RECORD_INTERVAL``) and when the content last
    changed (the Last-Modified of the next responses). Conditional updates: concurrent
    fetches don't need a lock, and an unchanged, recently fetched feed writes nothing."""
    if feed.content_hash != content_hash:
        CalendarFeed.objects.filter(pk=feed.pk).exclude(content_hash=content_hash).update(
            content_hash=content_hash, content_changed_at=now, last_accessed_at=now,
        )
        feed.content_hash, feed.content_changed_at, feed.last_accessed_at = content_hash, now, now
    elif feed.last_accessed_at is None or feed.last_accessed_at < now - ACCESS_RECORD_INTERVAL:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_accessed_at=now)
        feed.last_accessed_at = now


# --- selectors ----------------------------------------------------------------------------------


def calendar_feed_get_by_token(*, token: str) -> CalendarFeed | None:
    """The feed whose URL carries ``token``; None for anything else (malformed, unknown,
    rotated away, or its owner deactivated)."""
    if not _TOKEN_RE.match(token or ""):
        return None
    feed = (
        CalendarFeed.objects.select_related("user", "room__building", "room__floor")
        .filter(token_hash=token_hash(token)).first()
    )
    if feed is None or (feed.user_id and not feed.user.is_active):
        return None
    return feed


def calendar_feed_for(*, user: AbstractBaseUser | None = None, room: Room | None = None) -> CalendarFeed | None:
    owner = {"user": user} if user is not None else {"room": room}
    return CalendarFeed.objects.filter(**owner).first()


def calendar_feed_token(*, feed: CalendarFeed) -> str | None:
    """The feed's token, decrypted; None when TOKEN_ENCRYPTION_KEY can't read it any more
    (the owner then resets the link)."""
    try:
        return crypto.decrypt(feed.token_encrypted) or None
    except crypto.DecryptionError:
        return None


def feed_url(*, token: str, request: HttpRequest | None = None) -> str:
    """The feed's absolute URL: as the request was addressed, else at PUBLIC_BASE_URL."""
    path = reverse("portal:calendar_feed", args=[token])
    return request.build_absolute_uri(path) if request is not None else settings.PUBLIC_BASE_URL + path


def feed_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return (now - dt.timedelta(days=settings.CALENDAR_FEED_PAST_DAYS), now + dt.timedelta(days=settings.CALENDAR_FEED_FUTURE_DAYS))


def calendar_feed_reservations(*, feed: CalendarFeed, now: dt.datetime) -> QuerySet[Reservation]:
    """The rows a feed shows, with everything the calendar needs joined or prefetched
    (a fixed number of queries however many rows)."""
    since, until = feed_window(now)
    recently = now - dt.timedelta(days=RECENTLY_CANCELLED_DAYS)
    rows = reservation_queryset().select_related("room__floor").filter(start__lt=until, end__gt=since).filter(
        Q(state__in=ACTIVE_STATES)
        # Gone lately: kept as STATUS:CANCELLED (same UID, a higher SEQUENCE) so a subscribed
        # calendar learns of it: cancelled (ended early from a panel too), rejected, and
        # released for want of a check-in (an auto-released occurrence of a series as well).
        | Q(state=State.CANCELLED, cancelled_at__gte=recently)
        | Q(state=State.RELEASED, released_at__gte=recently)
        | Q(state=State.REJECTED, updated_at__gte=recently)
    )
    if feed.user_id:
        rows = rows.filter(Q(requested_for_id=feed.user_id) | Q(requested_by_id=feed.user_id))
    else:
        rows = rows.filter(room_id=feed.room_id)
    return rows.order_by("start", "id")
