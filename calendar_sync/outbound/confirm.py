"""Reading the room's answer after a push (SPEC §4 "Confirmation").

1. ``check_answers`` — right after pushes whose create response didn't carry an answer:
   reads the organizer's copies of all fresh awaiting meetings with ``$batch`` (20 per
   HTTP request), coalesced across pushes; an occurrence without an id of its own is
   answered from its series' master (one read per series);
2. ``check_room_calendars`` — every 10 minutes: the room's calendar must still hold each
   awaiting meeting, else the reservation is ``conflicted``;
3. ``clean_up_unanswered`` — no answer within ``exchange_callback_time_limit`` → ``rejected``;
   ``clean_up_unapproved`` — an approval pending longer than ``approval_time_limit`` →
   ``rejected``; either way the room is withdrawn from the meeting (``common.withdraw``).

Inbound sync reads the same answers from the mailboxes it pulls; every reader applies
them through ``common.answers``, so the employee is told once.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from exchange_auth import properties
from exchange_auth.graph import (
    BatchItem,
    GraphError,
    GraphResponse,
    NotFound,
    users_path,
)
from reservations.models import ApprovalState, Reservation, State, SyncEvent
from reservations.services import WAITING_FOR_ANSWER

from .. import conf
from ..common import outcomes
from ..common.answers import (
    ORGANIZER_COPY_SELECT,
    apply_room_answer,
    meeting_of,
    read_organizer_copy,
)
from ..common.clients import system_client
from ..common.plan import PermanentSyncError, client_for_plan, plan_for, provider
from ..common.withdraw import reject_and_withdraw

logger = logging.getLogger("calendar_sync")

def _awaiting():
    """Awaiting reservations whose meeting reached Exchange: their own, or their series'."""
    return (
        Reservation.objects.filter(state=State.AWAITING_CONFIRMATION)
        .filter(Q(event_id__gt="") | Q(series__event_id__gt=""))
        .select_related("room__building", "requested_for__profile", "requested_by", "series")
    )




def _record_change_key(reservation: Reservation, change_key: str) -> None:
    """The change key read belongs to the reservation's own meeting, or to its series' master."""
    if reservation.event_id or reservation.series is None:
        outcomes.set_change_key(reservation, change_key)
    else:
        outcomes.set_change_key(reservation.series, change_key)


ANSWER_READ_KEY = "calendar_sync:answer-read:{}"
ANSWER_READ_CAP_SECONDS = 60.0


ANSWER_READS_PER_ROUND = 40


def _due_for_a_read(reservation_ids: list[int], *, base: float, keep: float, most: int = ANSWER_READS_PER_ROUND) -> list[int]:
    """The reservations (ids) whose next answer read is due, each read spaced out from its last:
    ``base`` seconds after the first, then twice as long each time, at most a minute apart.
    Without it every scheduled check re-read every meeting still waiting — hundreds of reads
    a minute into the one organizer mailbox in Strict mode, taking its 4 request slots from
    the pushes (issue 17: bench/scale_outbound.py). Shared through the cache (Redis): any
    worker's check counts. At most ``most`` per round, the longest waiting first: the reads of
    a round run one after another, and a round marks only what it reads itself — a long
    round would leave meetings marked but unread while the next rounds skip them; the rest
    are due in the next round (a check is scheduled every confirm delay while any wait).

    Two workers' checks running at once each see a meeting due: a read is *claimed*
    (``_claim``: set-if-absent, expiring when the next read is due) and only the claim's
    winner reads it, so a meeting is read at most once per pause across all workers."""
    keys = {pk: ANSWER_READ_KEY.format(pk) for pk in reservation_ids}
    seen = cache.get_many(list(keys.values()))
    now = time.time()
    candidates: list[tuple[int, int, float]] = []
    for pk in reservation_ids:
        reads, next_at = seen.get(keys[pk]) or (0, 0.0)
        if next_at > now:
            continue
        if len(candidates) >= most:
            break
        candidates.append((pk, reads, min(ANSWER_READ_CAP_SECONDS, base * 2 ** reads)))
    won = _claim([(ANSWER_CLAIM_KEY.format(pk), pause) for pk, _, pause in candidates])
    due, marks = [], {}
    for (pk, reads, pause), ours in zip(candidates, won, strict=True):
        if ours:
            due.append(pk)
            marks[keys[pk]] = (reads + 1, now + pause)
    if marks:
        cache.set_many(marks, timeout=int(keep) + 60)
    return due


ANSWER_CLAIM_KEY = "calendar_sync:answer-claim:{}"


def _claim(keys: list[tuple[str, float]]) -> list[bool]:
    """Set each key if absent, expiring after its seconds; whether this caller set it. On Redis
    one round (a pipeline of ``SET NX PX``); elsewhere (the embedded default's file cache)
    ``cache.add`` each."""
    if not keys:
        return []
    client_of = getattr(getattr(cache, "_cache", None), "get_client", None)
    if client_of is not None and hasattr(cache, "make_and_validate_key"):
        pipe = client_of(write=True).pipeline(transaction=False)
        for key, seconds in keys:
            pipe.set(cache.make_and_validate_key(key), 1, nx=True, px=max(1, int(seconds * 1000)))
        return [bool(ok) for ok in pipe.execute()]
    return [cache.add(key, 1, timeout=max(1, round(seconds))) for key, seconds in keys]


def _pushed_since(qs, seconds: float):
    """Awaiting reservations whose meeting was pushed in the last ``seconds`` (their own create
    or update, or their series'): a booking that waited in the queue longer than the window
    still gets its answer read right after its push (was: created in the window)."""
    cutoff = timezone.now() - timedelta(seconds=seconds)
    pushed = SyncEvent.objects.filter(state=SyncEvent.State.PROCESSED, processed_at__gte=cutoff)
    return qs.filter(
        Exists(pushed.filter(reservation_id=OuterRef("pk"))) | Exists(pushed.filter(series_id=OuterRef("series_id")))
    )


def check_answers(*, max_age_seconds: float | None = None, limit: int = 1000, spaced: bool = False,
                  on_more: Callable[[], None] | None = None) -> dict:
    """Read the room's answer for awaiting reservations (``max_age_seconds``: those pushed that
    recently, ``_pushed_since``). Returns counts.

    One read per meeting: the occurrences of a series share their master's. ``spaced`` (the
    scheduled check): only the reservations whose next read is due (``_due_for_a_read``), and
    only those read with their room and people — the others by id alone (a round read every
    waiting reservation whole to pick its 40: in a backlog most of the answer check's CPU)."""
    qs = _awaiting()
    if max_age_seconds is not None:
        qs = _pushed_since(qs, max_age_seconds)
    qs = qs.order_by("created_at")
    if spaced:
        waiting = list(qs.values_list("pk", flat=True)[:limit])
        due: list[int] = []
        if waiting:
            settings = conf.get()
            due = _due_for_a_read(waiting, base=max(settings.confirm_delay_seconds, 0.5),
                                  keep=max_age_seconds or settings.confirm_follow_up_seconds)
            if on_more is not None and len(due) == ANSWER_READS_PER_ROUND and len(waiting) > len(due):
                on_more()  # more may be due: the next round reads them alongside this one
        reservations = list(qs.filter(pk__in=due)) if due else []  # one still waiting: answered meanwhile, it is left
    else:
        reservations = list(qs[:limit])
    counts = {"checked": 0, "confirmed": 0, "rejected": 0, "unanswered": 0, "missing": 0}
    if not reservations:
        return counts
    clients: dict[int, object] = {}
    providers: dict[int | None, object] = {}  # by the building's own provider: one read per round, not per meeting
    # (client, mailbox, event id) -> the reservations that meeting answers for
    meetings: dict[tuple[int, str, str], list[Reservation]] = defaultdict(list)
    for reservation in reservations:
        mailbox, event_id = meeting_of(reservation)
        named = reservation.room.building.calendar_provider_id
        active = providers.get(named)
        if active is None:
            active = providers[named] = provider(reservation.room)
        fake_event = SyncEvent(details={"system": False})
        plan, actor = plan_for(fake_event, reservation, reservation.room, active)
        try:
            client = client_for_plan(plan, active, actor, link_mailbox=mailbox)
        except PermanentSyncError:
            client = system_client(active)
        clients[id(client)] = client
        meetings[(id(client), mailbox, event_id)].append(reservation)
    by_client: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for client_key, mailbox, event_id in meetings:
        by_client[client_key].append((mailbox, event_id))
    for client_key, refs in by_client.items():
        client = clients[client_key]
        items = [BatchItem("GET", users_path(mailbox, "events", event_id) + f"?$select={ORGANIZER_COPY_SELECT}") for mailbox, event_id in refs]
        try:
            # One read per mailbox per batch: a batch takes its slots of a mailbox together,
            # and 4 at once never come free in an organizer mailbox the pushes keep busy
            # (Strict mode): the answers would wait for the last push (bench/scale_outbound.py).
            answers = client.batch(items, per_mailbox=1)
        except GraphError as exc:
            logger.warning("confirmation batch failed: %s", exc)
            continue
        for (mailbox, event_id), answer in zip(refs, answers, strict=True):
            for reservation in meetings[(client_key, mailbox, event_id)]:
                counts["checked"] += 1
                _apply_answer(reservation, answer, counts)
    return counts


def _apply_answer(reservation: Reservation, answer, counts: dict) -> None:
    if isinstance(answer, NotFound):
        counts["missing"] += 1
        outcomes.mark_conflicted(reservation, "The meeting no longer exists in Exchange.")
        return
    if not isinstance(answer, GraphResponse):
        return
    body = answer.body or {}
    if body.get("isCancelled"):
        counts["missing"] += 1
        outcomes.mark_conflicted(reservation, "The meeting was cancelled in Exchange.")
        return
    _record_change_key(reservation, body.get("changeKey", ""))
    result = apply_room_answer(reservation, body)
    counts[{"accepted": "confirmed", "declined": "rejected"}.get(result, "unanswered")] += 1




def pending_answers(max_age_seconds: float | None = None) -> int:
    qs = _awaiting()
    if max_age_seconds is not None:
        qs = _pushed_since(qs, max_age_seconds)
    return qs.count()


ROOM_COPY_SELECT = "id,iCalUId,seriesMasterId,type,isCancelled,responseStatus"


def batch_per_provider(reservations: list[Reservation], items: list[BatchItem]) -> list:
    """``items[i]`` (about ``reservations[i]``'s room) run by the system client of that room's
    provider: each tenant's rooms are read in their own tenant. One answer per item, in order."""
    groups: dict[int, list[int]] = defaultdict(list)
    found: dict[int, object] = {}
    for i, reservation in enumerate(reservations):
        active = provider(reservation.room)
        found[active.pk] = active
        groups[active.pk].append(i)
    answers: list = [None] * len(items)
    for pk, indexes in groups.items():
        for i, answer in zip(indexes, system_client(found[pk]).batch([items[i] for i in indexes]), strict=True):
            answers[i] = answer
    return answers


def check_room_calendars() -> dict:
    """The 10-minute check: each awaiting meeting must be on its room's calendar (or, if the
    room hasn't answered, still on the organizer's); a meeting gone → ``conflicted``.

    1. One calendarView read per reservation around its slot (``$batch``).
    2. An occurrence's own iCalUId differs from its series' (v1.0 has no ``uid``): it is matched
       through ``seriesMasterId`` and the master's ``iCalUId``, read once per master.
    3. A read that failed is logged and counted (``failed``), never taken for an absence."""
    counts = {"checked": 0, "confirmed": 0, "rejected": 0, "conflicted": 0, "failed": 0}
    reservations = list(_awaiting().filter(room__mailbox__gt=""))
    if not reservations:
        return counts
    items = []
    for r in reservations:
        window = {"startDateTime": (r.start - timedelta(minutes=1)).isoformat(), "endDateTime": (r.end + timedelta(minutes=1)).isoformat()}
        query = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in window.items())
        items.append(BatchItem("GET", users_path(r.room.mailbox, "calendarView") + f"?{query}&$select={ROOM_COPY_SELECT}"))
    answers = batch_per_provider(reservations, items)
    masters = _series_ical_uids(reservations, answers, counts)
    for reservation, answer in zip(reservations, answers, strict=True):
        counts["checked"] += 1
        if not isinstance(answer, GraphResponse):
            counts["failed"] += 1
            logger.warning("room check: reading %s's calendar for reservation %s failed: %s",
                           reservation.room.mailbox, reservation.pk, answer)
            continue
        wanted = {u for u in (reservation.ical_uid, reservation.series.ical_uid if reservation.series else "") if u}
        mailbox = reservation.room.mailbox.lower()
        copies = [e for e in (answer.body or {}).get("value", [])
                  if not e.get("isCancelled")
                  and wanted & {e.get("iCalUId"), masters.get((mailbox, e.get("seriesMasterId") or ""))}]
        if copies:
            response = ((copies[0].get("responseStatus") or {}).get("response") or "")
            if response == "accepted" and outcomes.mark_confirmed(reservation):
                counts["confirmed"] += 1
            elif response == "tentativelyAccepted" and outcomes.mark_awaiting_approval(reservation):
                counts["awaiting_approval"] = counts.get("awaiting_approval", 0) + 1  # the room's delegate has the request
            continue
        # Not on the room's calendar: unanswered (still on the organizer's, room not yet
        # answering) or gone. Ask the organizer's copy once to tell the two apart.
        result = check_answers_for(reservation)
        if result in ("accepted", "declined"):
            counts["confirmed" if result == "accepted" else "rejected"] += 1
        elif result == "missing":
            if outcomes.mark_conflicted(reservation, f"The meeting is missing from {reservation.room.name}'s calendar."):
                counts["conflicted"] += 1
    return counts


def _series_ical_uids(reservations, answers, counts: dict) -> dict[tuple[str, str], str]:
    """(room mailbox, master id) → the series master's iCalUId, for the occurrences the reads met
    (each read in its room's tenant)."""
    wanted: dict[tuple[str, str], Reservation] = {}
    for reservation, answer in zip(reservations, answers, strict=True):
        if not isinstance(answer, GraphResponse):
            continue
        mailbox = reservation.room.mailbox.lower()
        for e in (answer.body or {}).get("value", []):
            key = (mailbox, e.get("seriesMasterId") or "")
            if key[1]:
                wanted.setdefault(key, reservation)
    if not wanted:
        return {}
    found = batch_per_provider(
        list(wanted.values()), [BatchItem("GET", users_path(mailbox, "events", master_id) + "?$select=id,iCalUId") for mailbox, master_id in wanted],
    )
    out = {}
    for key, answer in zip(wanted, found, strict=True):
        if isinstance(answer, GraphResponse):
            out[key] = (answer.body or {}).get("iCalUId") or ""
        elif not isinstance(answer, NotFound):
            counts["failed"] += 1
            logger.warning("room check: reading the series master %s in %s failed: %s", key[1], key[0], answer)
    return out




def check_answers_for(reservation: Reservation) -> str:
    body = read_organizer_copy(reservation)
    if body is None:
        return "missing"
    if not body:
        return ""
    answer = apply_room_answer(reservation, body)
    return answer if answer in ("accepted", "declined") else "unanswered"


def clean_up_unanswered() -> int:
    """Awaiting the room's answer longer than ``exchange_callback_time_limit`` → rejected (employee
    told) and the room withdrawn from the meeting (``common.withdraw``). A reservation whose
    approval is pending is measured against ``approval_time_limit`` instead (``clean_up_unapproved``)."""
    limit = int(properties.get(properties.EXCHANGE_CALLBACK_TIME_LIMIT))
    cutoff = timezone.now() - timedelta(seconds=limit)
    n = 0
    waiting = (
        Reservation.objects.filter(state=State.AWAITING_CONFIRMATION, created_at__lt=cutoff)
        .exclude(approval_state=ApprovalState.AWAITING_APPROVAL)
        .select_related("room__building", "requested_for", "requested_by", "series")
    )
    for reservation in waiting:
        if reject_and_withdraw(reservation, f"{reservation.room.name} did not answer within {_duration(limit)}."):
            n += 1
    return n


def clean_up_unapproved() -> int:
    """Awaiting approval (a delegate in Exchange, or the room's approvers in the product) longer
    than ``approval_time_limit`` → rejected (employee told) and, when the meeting exists, the
    room withdrawn from it."""
    limit = int(properties.get(properties.APPROVAL_TIME_LIMIT))
    cutoff = timezone.now() - timedelta(seconds=limit)
    n = 0
    pending = (
        Reservation.objects.filter(state__in=WAITING_FOR_ANSWER, approval_state=ApprovalState.AWAITING_APPROVAL)
        .filter(Q(approval_requested_at__lt=cutoff) | Q(approval_requested_at__isnull=True, created_at__lt=cutoff))
        .select_related("room__building", "requested_for", "requested_by", "series")
    )
    for reservation in pending:
        if reject_and_withdraw(reservation, f"{reservation.room.name}'s booking was not approved within {_duration(limit)}."):
            n += 1
    return n


def _duration(seconds: int) -> str:
    """A time limit as the employee reads it: "5 hours", "2 days", "90 minutes"."""
    if seconds % 86400 == 0 and seconds >= 86400:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hours" if seconds != 3600 else "1 hour"
    return f"{seconds / 60:g} minutes"
