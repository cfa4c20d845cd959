"""The release of no-shows: a reservation of a room that requires check-in and isn't checked
in when its window closes (``checkin_window``) becomes ``released`` and the room is freed in
Exchange by the ordinary cancel push, as SPEC §3 gives each kind of meeting:

- a meeting the product made is cancelled (a Teams meeting keeps its place on people's
  calendars: only the room is taken off it, as "also cancel the meeting" unticked does);
- a meeting made in Outlook is declined by the room, that occurrence only;
- a room-organized meeting (Strict mode) is cancelled: the product can't choose there.

The requested-for employee and the requester are told once, by email, with the reason.

A series: only the missed occurrence is released. After ``sn_wsd_rsv.noshow_series_limit``
consecutive released occurrences (since the organizer last confirmed) the organizer is asked
by email to confirm the series within ``sn_wsd_rsv.noshow_confirm_hours``; unconfirmed by then,
every occurrence still to come is released (one series-wide cancel push).

Claiming is safe under retries and several workers: each batch locks its rows with
``FOR UPDATE SKIP LOCKED`` and re-checks them under the lock; a check-in holding a row's lock
wins (the row is skipped, then found checked in), and one that comes after is refused
(``CheckInRefused``, code ``released``)."""

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import formats, timezone

from exchange_auth import properties
from reservations.checkin_window import CheckInRules
from reservations.exceptions import NotPermitted
from reservations.models import ACTIVE_STATES, Reservation, ReservationSeries, State, SyncState
from reservations.services import clock
from reservations.services.sync_events import record_cancels, record_occurrence_cancels
from reservations.services.validation import REASON_MAX_LENGTH

logger = logging.getLogger("reservations.release")

BATCH = 500
# Reservations that started longer ago than this are left alone (a room switched to required
# check-in does not release last week's history).
HORIZON = dt.timedelta(hours=12)
SYSTEM = {"actor_id": None, "source": "", "subsource": "", "system": True}


def _local(value: dt.datetime, row) -> str:
    return formats.time_format(timezone.localtime(value, row.room.building.tzinfo), "H:i")


def _day(value: dt.datetime, row) -> str:
    return timezone.localtime(value, row.room.building.tzinfo).strftime("%a %d %b %Y")


def due(now: dt.datetime, rules: CheckInRules):
    """Active reservations not checked in whose window has closed (index rsv_checkin_due)."""
    cutoff = now - rules.after
    room = ~Q(room__checkin_required=False) if rules.required_default else Q(room__checkin_required=True)
    return Reservation.objects.filter(
        room, state__in=ACTIVE_STATES, checked_in_at__isnull=True, start__lte=cutoff, created_at__lte=cutoff,
        start__gt=now - HORIZON,
    )


def release_due(*, now: dt.datetime | None = None, limit: int = BATCH) -> list[Reservation]:
    """Release one batch of due reservations (at most ``limit``); returns those released."""
    now = now or clock.now()
    rules = CheckInRules.now()
    with transaction.atomic(durable=True):
        rows = list(
            due(now, rules).select_for_update(of=("self",), skip_locked=True)
            .select_related("room__building", "series", "requested_for", "requested_by")
            .order_by("start", "id")[:limit]
        )
        if not rows:
            return []
        reasons = {row.pk: f"Released: nobody checked in by {_local(rules.window(row)[1], row)}." for row in rows}
        for row in rows:
            row.state, row.released_at, row.state_reason, row.updated_at = State.RELEASED, now, reasons[row.pk][:REASON_MAX_LENGTH], now
        # One delete event per row, all in one INSERT; a Teams meeting keeps its place on
        # people's calendars: only the room leaves it.
        synced = record_occurrence_cancels(rows=rows, cancel_meeting=lambda row: not _is_online(row), via=SYSTEM)
        # Plain UPDATEs, one per reason (rows whose window closed at the same minute share it):
        # bulk_update's CASE over every row costs seconds of Python for a batch of 500.
        by_reason: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            by_reason[row.state_reason].append(row.pk)
        for reason, ids in by_reason.items():
            Reservation.objects.filter(pk__in=ids).update(state=State.RELEASED, released_at=now, state_reason=reason, updated_at=now)
        if synced:
            Reservation.objects.filter(pk__in=[row.pk for row in synced]).update(sync_state=SyncState.PENDING)
        asked = _ask_series_after_noshows({r.series_id for r in rows if r.series_id}, now)
        messages = [_released_message(row) for row in rows] + asked
        transaction.on_commit(lambda: _send(messages), robust=True)
    return rows


def _is_online(row: Reservation) -> bool:
    return bool(row.online_meeting or (row.series_id and row.series.online_meeting))


def _recipients(*users) -> list[str]:
    seen: list[str] = []
    for user in users:
        email = (getattr(user, "email", "") or "").strip().lower()
        if email and email not in seen:
            seen.append(email)
    return seen


def _released_message(row: Reservation) -> EmailMessage:
    kind = (
        "Exchange: the room declined this occurrence of the meeting." if row.origin == "exchange"
        else "Exchange: the room was taken off the meeting (it stays on people's calendars)." if _is_online(row)
        else "Exchange: the meeting was cancelled."
    ) if row.room.is_synced else ""
    body = (
        f"“{row.subject}” in {row.room.name} on {_day(row.start, row)} at {_local(row.start, row)} was released: "
        f"{row.state_reason.removeprefix('Released: ')}\n\nThe room is free for others now. {kind}\n"
        f"\nRoom {row.room.name} requires check-in (portal, the QR code on the door, the room's panel or the API) "
        "within a few minutes of the start.\n"
    )
    return EmailMessage(f"Room released: {row.subject}", body, settings.DEFAULT_FROM_EMAIL, _recipients(row.requested_for, row.requested_by))


def _send(messages: list[EmailMessage]) -> None:
    messages = [m for m in messages if m.to]
    if not messages:
        return
    try:
        get_connection().send_messages(messages)
    except Exception:
        logger.exception("could not send %d release emails", len(messages))


# --- the series rule ----------------------------------------------------------------------------


def _awaiting_confirmation(series: ReservationSeries) -> bool:
    return series.noshow_confirm_by is not None


def consecutive_noshows(series: ReservationSeries, *, until: dt.datetime) -> int:
    """Released occurrences in a row, latest first, up to ``until`` and since the last confirmation."""
    rows = series.occurrences.filter(start__lte=until).exclude(state=State.CANCELLED)
    if series.noshow_confirmed_at:
        rows = rows.filter(start__gt=series.noshow_confirmed_at)
    count = 0
    for state in rows.order_by("-start").values_list("state", flat=True)[:100]:
        if state != State.RELEASED:
            break
        count += 1
    return count


def _ask_series_after_noshows(series_ids, now: dt.datetime) -> list[EmailMessage]:
    if not series_ids:
        return []
    limit, hours = properties.get_many(properties.NOSHOW_SERIES_LIMIT, properties.NOSHOW_CONFIRM_HOURS)
    messages = []
    for series in ReservationSeries.objects.select_for_update(of=("self",)).select_related("room__building", "requested_for", "requested_by").filter(pk__in=series_ids):
        if _awaiting_confirmation(series) or consecutive_noshows(series, until=now) < limit:
            continue
        series.noshow_confirmation_requested_at, series.noshow_confirm_by = now, now + dt.timedelta(hours=hours)
        series.save(update_fields=["noshow_confirmation_requested_at", "noshow_confirm_by"])
        link = settings.PUBLIC_BASE_URL + reverse("portal:series_confirm", args=[series.pk])
        body = (
            f"Nobody checked in to the last {limit} meetings of your series “{series.subject}” in {series.room.name}, "
            "so each was released.\n\n"
            f"Do you still need the room? Confirm the series by {_day(series.noshow_confirm_by, series)} "
            f"{_local(series.noshow_confirm_by, series)}:\n\n  {link}\n\n"
            "If it isn't confirmed by then, the rest of the series is released and the room freed in Exchange.\n"
        )
        messages.append(EmailMessage(
            f"Still need {series.room.name}? Confirm “{series.subject}”", body, settings.DEFAULT_FROM_EMAIL,
            _recipients(series.requested_for, series.requested_by),
        ))
    return messages


def series_confirm(*, series: ReservationSeries, actor: AbstractBaseUser, now: dt.datetime | None = None) -> ReservationSeries:
    """The organizer (or requester, or staff) says the series is still needed: the count of
    no-shows starts again and nothing more is released for it."""
    if not actor.is_staff and actor.pk not in (series.requested_for_id, series.requested_by_id):
        raise NotPermitted("Only the organizer or requester can confirm this series.")
    now = now or clock.now()
    with transaction.atomic(durable=True):
        ReservationSeries.objects.filter(pk=series.pk).update(noshow_confirmed_at=now, noshow_confirm_by=None)
    series.noshow_confirmed_at, series.noshow_confirm_by = now, None
    return series


def release_unconfirmed_series(*, now: dt.datetime | None = None) -> list[ReservationSeries]:
    """Series whose confirmation deadline passed: every occurrence still to come is released."""
    now = now or clock.now()
    done = []
    with transaction.atomic(durable=True):
        overdue = list(
            ReservationSeries.objects.select_for_update(of=("self",), skip_locked=True).select_related("room__building", "requested_for", "requested_by")
            .filter(noshow_confirm_by__lte=now)
        )
        messages = []
        for series in overdue:
            reason = f"Released: the series wasn't confirmed after {consecutive_noshows(series, until=now)} meetings without check-in."
            rows = list(
                series.occurrences.select_for_update(of=("self",)).select_related("room__building", "series")
                .filter(state__in=ACTIVE_STATES, end__gt=now).order_by("start")
            )
            ReservationSeries.objects.filter(pk=series.pk).update(noshow_confirm_by=None)
            series.noshow_confirm_by = None
            if rows:
                Reservation.objects.filter(pk__in=[r.pk for r in rows]).update(
                    state=State.RELEASED, released_at=now, state_reason=reason[:REASON_MAX_LENGTH], updated_at=now,
                )
                for row in rows:
                    row.state, row.released_at, row.state_reason = State.RELEASED, now, reason
                record_cancels(rows=rows, series_wide=True, reason=reason, cancel_meeting=True, via=SYSTEM)
            messages.append(EmailMessage(
                f"Series released: {series.subject}",
                f"“{series.subject}” in {series.room.name} wasn't confirmed in time after repeated no-shows: "
                f"its {len(rows)} remaining meeting(s) were released and the room freed in Exchange.\n",
                settings.DEFAULT_FROM_EMAIL, _recipients(series.requested_for, series.requested_by),
            ))
            done.append(series)
        transaction.on_commit(lambda: _send(messages), robust=True)
    return done
