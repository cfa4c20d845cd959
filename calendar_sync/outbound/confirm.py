"""Reading the room's answer after a push (SPEC §4 "Confirmation").

1. ``check_answers`` — after pushes whose create response didn't carry an answer: reads
   the organizer's copy of each fresh awaiting meeting a confirm delay after its push (then
   spaced out while it waits), with ``$batch``, coalesced across pushes and claimed across
   workers (one read per create when the room answers in time); an occurrence without an id
   of its own is answered from its series' master (one read per series); a meeting whose
   answer a pull will bring (its room's or its own mailbox listened to, ``common.listening``)
   is first read only a listened delay after its push, if it still waits then;
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
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from exchange_auth import properties, providers
from exchange_auth.graph import (
    BatchItem,
    GraphClient,
    GraphError,
    GraphResponse,
    NotFound,
    users_path,
)
from reservations.models import ApprovalState, Reservation, State, SyncEvent
from reservations.services import WAITING_FOR_ANSWER

from .. import conf
from ..common import listening, outcomes
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


ANSWER_READ_KEY = "calendar_sync:answer-read:{}"  # (reads so far, next read due at, the push they follow, the first read of it at)
ANSWER_CLAIM_KEY = "calendar_sync:answer-claim:{}"  # held by the round reading the meeting now
ANSWER_READ_CAP_SECONDS = 60.0


ANSWER_READS_PER_ROUND = 40


def _push_time(reservation: Reservation) -> float:
    """When the reservation's latest push was processed (epoch seconds; 0 if unknown)."""
    pushed = getattr(reservation, "pushed_at", None)
    return pushed.timestamp() if pushed else 0.0


def _next_read(mark, pushed: float, base: float) -> tuple[int, float, float | None]:
    """(reads so far, when the next read is due, when the first of them was) of a meeting whose
    latest push was at ``pushed``, from its mark in the cache. A meeting not read since that push
    is first read ``base`` after it — the confirm delay: the room's booking attendant answers
    within seconds, so a read right after the push would find no answer and read it again
    (issue 17); the listened delay when a pull will bring the answer (``_first_read_delays``).
    (A mark written before it kept its first read counts from the push.)"""
    reads, next_at, *rest = mark or (0, 0.0)
    if mark is None or (rest[0] if rest else None) != pushed:
        return 0, pushed + base, None
    return reads, next_at, rest[1] if len(rest) > 1 else pushed


def _mark_lifetime(window: float) -> float:
    """How long a meeting's read mark is kept: at least until the clean-up rejects the reservation
    unanswered (``exchange_callback_time_limit``, ``approval_time_limit``). The follow-up window
    counts from the first read (``_following``): a mark gone sooner would make a meeting whose
    follow-ups are over look never read, and its reads would start over."""
    limits = (properties.get(properties.EXCHANGE_CALLBACK_TIME_LIMIT), properties.get(properties.APPROVAL_TIME_LIMIT))
    return max(window, *(float(limit) for limit in limits))


class AnswerRound:
    """The reservations one check round claimed (``_due_for_a_read``), read by it and marked
    when read (``done``), and when the earliest of the waiting ones comes due (``next_at``)."""

    def __init__(self, base: float, keep: float, lease: float, request_wait: float):
        self.base, self.keep, self.lease, self.request_wait = base, keep, lease, request_wait
        self.due: list[Reservation] = []
        self.reads: dict[int, int] = {}  # pk -> the answer reads before this round's
        self.first: dict[int, float] = {}  # pk -> when its first read since its push was (none yet: absent)
        self.held: set[int] = set()  # claimed, not yet marked
        self.later: list[float] = []  # when the waiting reservations come due
        self.claimed_at = time.time()

    @property
    def next_at(self) -> float | None:
        return min(self.later, default=None)

    def hold(self) -> None:
        """Before each request of the round: the claims still held are renewed to a full lease
        when what is left of it might not outlast one request (``request_wait_seconds``), so a
        round stuck behind the pushes for minutes keeps its meetings to itself."""
        if self.held and time.time() - self.claimed_at > self.lease - self.request_wait:
            _extend([ANSWER_CLAIM_KEY.format(pk) for pk in self.held], self.lease)
            self.claimed_at = time.time()

    def done(self, read: list[tuple[Reservation, bool]]) -> None:
        """The reservations read (with whether each still waits for its answer): each marked read
        — its next read ``base`` after this one, then twice as long each time, at most a minute —
        and its claim released, in that order: a round that claims it next sees the mark."""
        if not read:
            return
        now = time.time()
        marks = {}
        for reservation, waiting in read:
            reads = self.reads[reservation.pk]
            pause = min(ANSWER_READ_CAP_SECONDS, self.base * 2 ** reads)
            first = self.first.get(reservation.pk, now)
            marks[ANSWER_READ_KEY.format(reservation.pk)] = (reads + 1, now + pause, _push_time(reservation), first)
            if waiting:
                self.later.append(now + pause)
        cache.set_many(marks, timeout=int(self.keep) + 60)
        cache.delete_many([ANSWER_CLAIM_KEY.format(r.pk) for r, _ in read])
        self.held.difference_update(r.pk for r, _ in read)


def _due_for_a_read(reservations: list[Reservation], *, base: float, keep: float, lease: float,
                    request_wait: float = 0.0, most: int = ANSWER_READS_PER_ROUND,
                    first: dict[int, float] | None = None) -> AnswerRound:
    """The reservations whose next answer read is due, claimed for this round: the first read
    ``base`` seconds after the meeting's push (``_next_read``; ``first[pk]`` seconds for those
    listed there, ``_first_read_delays``), each next one spaced out from the last. Without it
    every scheduled check re-read every meeting still waiting — hundreds of reads a minute into
    the one organizer mailbox in Strict mode, taking its 4 request slots from the pushes (issue
    17: bench/scale_outbound.py). Shared through the cache (Redis): any worker's check counts. At
    most ``most`` per round, the longest waiting first; the rest are due in the next round.

    Several workers' checks run side by side (and one worker's: a round that finds more due
    queues the next). A read is *claimed* (``_claim``: set-if-absent) and only the claim's winner
    reads it; the claim lasts until the round has applied the answer and marked the meeting read
    (``AnswerRound.done``), for ``lease`` seconds at a time (``AnswerRound.hold`` renews it), so
    a meeting is read once per pause across all workers however long the round takes. (It
    expired with the pause: a round of 40 one-by-one reads behind the pushes takes longer, and
    applies its answers at the end — a later round read the same meetings again: 1.5 to 3.3
    answer reads per create.) A worker that dies mid-round leaves its claims to expire."""
    found = AnswerRound(base, keep, lease, request_wait)
    first = first or {}
    marks = {r.pk: ANSWER_READ_KEY.format(r.pk) for r in reservations}
    claims = {r.pk: ANSWER_CLAIM_KEY.format(r.pk) for r in reservations}
    seen = cache.get_many([*marks.values(), *claims.values()])
    now = time.time()
    candidates: list[tuple[Reservation, int]] = []
    for reservation in reservations:
        if claims[reservation.pk] in seen:
            found.later.append(now + lease)  # another round's: it marks it when read (or its claim expires)
            continue
        reads, due_at, first_at = _next_read(seen.get(marks[reservation.pk]), _push_time(reservation), first.get(reservation.pk, base))
        if due_at > now:
            found.later.append(due_at)
            continue
        if len(candidates) >= most:
            break
        candidates.append((reservation, reads, first_at))
    won = [c for c, ours in zip(candidates, _claim([(claims[r.pk], lease) for r, *_ in candidates]), strict=True) if ours]
    found.claimed_at = time.time()
    # A round that read one of them between our look and our claim has marked it: look again.
    again = cache.get_many([marks[r.pk] for r, *_ in won]) if won else {}
    released = []
    for reservation, reads, first_at in won:
        mark = again.get(marks[reservation.pk])
        if mark != seen.get(marks[reservation.pk]):
            reads, due_at, first_at = _next_read(mark, _push_time(reservation), first.get(reservation.pk, base))
            if due_at > found.claimed_at:
                released.append(claims[reservation.pk])
                found.later.append(due_at)
                continue
        found.due.append(reservation)
        found.reads[reservation.pk] = reads
        if first_at is not None:
            found.first[reservation.pk] = first_at
        found.held.add(reservation.pk)
    if released:
        cache.delete_many(released)
    if len(won) < len(candidates):
        found.later.append(now + lease)  # claimed by another round meanwhile
    return found


def _claim(keys: list[tuple[str, float]]) -> list[bool]:
    """Set each key if absent, expiring after its seconds; whether this caller set it. On Redis
    one round (a pipeline of ``SET NX PX``); elsewhere (the embedded default's file cache)
    ``cache.add`` each."""
    if not keys:
        return []
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        for key, seconds in keys:
            pipe.set(cache.make_and_validate_key(key), 1, nx=True, px=max(1, int(seconds * 1000)))
        return [bool(ok) for ok in pipe.execute()]
    return [cache.add(key, 1, timeout=max(1, round(seconds))) for key, seconds in keys]


def _extend(keys: list[str], seconds: float) -> None:
    """Each key (a claim still held) expires ``seconds`` from now: one pipeline of ``PEXPIRE`` on Redis."""
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.pexpire(cache.make_and_validate_key(key), max(1, int(seconds * 1000)))
        pipe.execute()
        return
    for key in keys:
        cache.touch(key, timeout=max(1, round(seconds)))


def _redis():
    """The Redis client behind the cache, or None (the embedded default's file cache)."""
    client_of = getattr(getattr(cache, "_cache", None), "get_client", None)
    if client_of is not None and hasattr(cache, "make_and_validate_key"):
        return client_of(write=True)
    return None


class _Waiting(NamedTuple):
    """A waiting reservation as a round is picked: its id and when its latest push was processed."""
    pk: int
    pushed_at: datetime | None


_LOOKUP_CHUNK = 1000


def _latest_pushes(rows: list[tuple[int, int | None]]) -> dict[int, datetime | None]:
    """For (reservation id, series id) rows: when the latest push of each one's meeting (its own,
    or its series') was processed (None: none yet) — its first answer read is due a confirm
    delay after it.

    The sync events are looked up by their foreign keys alone and their state and time compared
    here. As correlated subqueries on the state too, PostgreSQL ANDed the foreign key's index
    with syncevent_state_due's (every processed event) whenever its statistics still counted few
    processed ones — as they do after a burst of pushes: 11 s for a round of 1,000 waiting, 40 s
    for the window's filter, at 10,000 pushes (bench/scale_outbound.py --full, Strict), several
    rounds at once (tests/calendar_sync/test_answer_check_plans.py)."""
    processed = SyncEvent.State.PROCESSED
    own: dict[int, datetime] = {}
    by_series: dict[int, datetime] = {}
    for found, column, ids in ((own, "reservation_id", [pk for pk, _ in rows]),
                               (by_series, "series_id", sorted({series for _, series in rows if series}))):
        for i in range(0, len(ids), _LOOKUP_CHUNK):
            events = SyncEvent.objects.filter(**{f"{column}__in": ids[i:i + _LOOKUP_CHUNK]}).order_by()
            for key, state, at in events.values_list(column, "state", "processed_at"):
                if state == processed and at is not None and (key not in found or at > found[key]):
                    found[key] = at
    return {pk: max((at for at in (own.get(pk), by_series.get(series)) if at is not None), default=None) for pk, series in rows}


def _following(waiting: list[_Waiting], window: float) -> list[_Waiting]:
    """Of the waiting reservations whose meeting was pushed, those whose answer is still followed
    up: not read since their latest push (their own create or update, or their series'), or
    first read since it less than ``window`` ago. The window counts from the first read, not the
    push: a check that ran late (queued behind the pushes) or a backlog of answers longer than
    the window skipped every meeting pushed before it, never read (issue 17: 4,320 of 10,000
    confirmed). A meeting read and still unanswered for a whole window is left to the 10-minute
    check (``check_room_calendars``). Only the marks of meetings pushed before the window are
    looked at: one pushed within it was first read within it too."""
    now = time.time()
    cutoff = now - window
    old = [w for w in waiting if w.pushed_at is not None and w.pushed_at.timestamp() < cutoff]
    marks = cache.get_many([ANSWER_READ_KEY.format(w.pk) for w in old]) if old else {}
    over = set()
    for w in old:
        reads, _, first = _next_read(marks.get(ANSWER_READ_KEY.format(w.pk)), w.pushed_at.timestamp(), 0.0)
        if reads and first is not None and first < cutoff:
            over.add(w.pk)
    return [w for w in waiting if w.pushed_at is not None and w.pk not in over]


def _awaiting_rows(max_age_seconds: float | None, limit: int | None) -> list[_Waiting]:
    """The awaiting reservations (``_awaiting``), the longest waiting first, with their latest
    push (``_latest_pushes``); with ``max_age_seconds``, only those pushed whose answer is still
    followed up (``_following``: never read since the push, or first read less than that long
    ago): a booking that waited in the queue longer than the window still gets its answer read
    after its push. At most ``limit``."""
    qs = _awaiting().order_by("created_at").values_list("pk", "series_id")
    rows = list(qs if max_age_seconds is not None or limit is None else qs[:limit])
    pushed = _latest_pushes(rows)
    waiting = [_Waiting(pk, pushed[pk]) for pk, _ in rows]
    if max_age_seconds is not None:
        waiting = _following(waiting, max_age_seconds)
    return waiting if limit is None else waiting[:limit]


def _first_read_delays(waiting: list[_Waiting], *, base: float, listened_delay: float) -> dict[int, float]:
    """{reservation id: the listened delay} of the waiting reservations whose room's answer will
    reach the product through a pull: their room's mailbox, or the mailbox their meeting lives in
    (the organizer account in Strict mode), is listened to (``common.listening``). Their first
    read waits that long after the push instead of the confirm delay: the pull confirms them
    meanwhile and they are never read; one still waiting then is read (a notification lost).

    Only the reservations pushed less than the listened delay ago are looked at (for one pushed
    before, both delays are over), and only when some mailbox is listened to: a query for the
    listened mailboxes, and one for those reservations' mailboxes, per round — never per
    reservation. The follow-up reads keep their spacing (``AnswerRound.done``)."""
    if listened_delay <= base or not waiting:
        return {}
    now = time.time()
    recent = [w.pk for w in waiting if w.pushed_at is not None and w.pushed_at.timestamp() > now - listened_delay]
    if not recent:
        return {}
    listened = listening.listened_mailboxes(datetime.fromtimestamp(now, tz=UTC), within=listened_delay)
    if not listened:
        return {}
    default_id: list[int | None] = []  # the default provider's id, looked up (in the cache) when a building names none
    delays: dict[int, float] = {}
    for i in range(0, len(recent), _LOOKUP_CHUNK):
        rows = Reservation.objects.filter(pk__in=recent[i:i + _LOOKUP_CHUNK]).order_by().values_list(
            "pk", "room__mailbox", "mailbox", "series__mailbox",
            "room__building__calendar_provider_id", "room__building__calendar_provider__active")
        for pk, room_mailbox, mailbox, series_mailbox, provider_id, active in rows:
            if not (provider_id and active):  # the room's provider is the default one (providers.provider_for_building)
                if not default_id:
                    default_id.append(providers.cached_default_provider_id())
                provider_id = default_id[0]
            if any((provider_id, (m or "").lower()) in listened for m in (room_mailbox, mailbox, series_mailbox) if m):
                delays[pk] = listened_delay
    return delays


def check_answers(*, max_age_seconds: float | None = None, limit: int = 1000, spaced: bool = False,
                  on_more: Callable[[], None] | None = None) -> dict:
    """Read the room's answer for awaiting reservations (``max_age_seconds``: those whose answer
    is still followed up, ``_awaiting_rows``). Returns counts.

    One read per meeting: the occurrences of a series share their master's. ``spaced`` (the
    scheduled check): only the reservations whose next read is due, claimed for this round
    (``_due_for_a_read``); the counts then carry ``next_read_in``, the seconds until the next
    of the waiting ones is due (None when none waits): when to check next."""
    counts = {"checked": 0, "confirmed": 0, "rejected": 0, "unanswered": 0, "missing": 0}
    if spaced:
        # The round is picked from ids and push times alone, and only the reservations it reads
        # are built whole, with their room and people (every waiting one, up to 1,000, read
        # whole to pick 40 was most of the answer check's CPU in a backlog).
        waiting = _awaiting_rows(max_age_seconds, limit)
        settings = conf.get()
        base = max(settings.confirm_delay_seconds, 0.5)
        found = _due_for_a_read(waiting, base=base,
                                keep=_mark_lifetime(max_age_seconds or settings.confirm_follow_up_seconds),
                                lease=settings.lease_seconds, request_wait=settings.request_wait_seconds,
                                first=_first_read_delays(waiting, base=base, listened_delay=settings.confirm_listened_delay_seconds))
        if on_more is not None and len(found.due) == ANSWER_READS_PER_ROUND and len(waiting) > len(found.due):
            on_more()  # more may be due: the next round reads them alongside this one
        if found.due:
            whole = _awaiting().in_bulk([w.pk for w in found.due])
            gone = [w.pk for w in found.due if w.pk not in whole]  # answered meanwhile: left, its claim released
            if gone:
                found.held.difference_update(gone)
                cache.delete_many([ANSWER_CLAIM_KEY.format(pk) for pk in gone])
            for w in found.due:
                if w.pk in whole:
                    whole[w.pk].pushed_at = w.pushed_at
            found.due = [whole[w.pk] for w in found.due if w.pk in whole]
        try:
            _read_answers(found.due, counts, found)
        finally:
            found.done([(r, True) for r in found.due if r.pk in found.held])  # a read that raised: read again after the pause
        next_at = found.next_at
        counts["next_read_in"] = None if next_at is None else max(0.0, next_at - time.time())
        return counts
    if max_age_seconds is None:
        _read_answers(list(_awaiting().order_by("created_at")[:limit]), counts)
    else:
        ids = [w.pk for w in _awaiting_rows(max_age_seconds, limit)]
        _read_answers(list(_awaiting().filter(pk__in=ids).order_by("created_at")) if ids else [], counts)
    return counts


def _read_answers(reservations: list[Reservation], counts: dict, found: AnswerRound | None = None) -> None:
    """Read and apply the answers of ``reservations``' meetings, a batch at a time; each batch's
    reservations marked read in ``found`` (a spaced round) once their answers are applied."""
    if not reservations:
        return
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
        # One read per mailbox per batch: a batch takes its slots of a mailbox together,
        # and 4 at once never come free in an organizer mailbox the pushes keep busy
        # (Strict mode): the answers would wait for the last push (bench/scale_outbound.py).
        # A batch at a time: its answers applied and its meetings marked before the next.
        for group in GraphClient.batch_groups(items, per_mailbox=1):
            if found is not None:
                found.hold()
            read: list[tuple[Reservation, bool]] = []
            try:
                answers = client.batch([items[i] for i in group], per_mailbox=1)
            except GraphError as exc:
                logger.warning("confirmation batch failed: %s", exc)
                read = [(r, True) for i in group for r in meetings[(client_key, *refs[i])]]  # read again after the pause
            else:
                for i, answer in zip(group, answers, strict=True):
                    for reservation in meetings[(client_key, *refs[i])]:
                        counts["checked"] += 1
                        read.append((reservation, _apply_answer(reservation, answer, counts)))
            if found is not None:
                found.done(read)


def _apply_answer(reservation: Reservation, answer, counts: dict) -> bool:
    """Apply one read of the organizer's copy; whether the reservation still waits for its answer."""
    if isinstance(answer, NotFound):
        counts["missing"] += 1
        outcomes.mark_conflicted(reservation, "The meeting no longer exists in Exchange.")
        return False
    if not isinstance(answer, GraphResponse):
        return True
    body = answer.body or {}
    if body.get("isCancelled"):
        counts["missing"] += 1
        outcomes.mark_conflicted(reservation, "The meeting was cancelled in Exchange.")
        return False
    _record_change_key(reservation, body.get("changeKey", ""))
    result = apply_room_answer(reservation, body)
    counts[{"accepted": "confirmed", "declined": "rejected"}.get(result, "unanswered")] += 1
    return result not in ("accepted", "declined")




def pending_answers(max_age_seconds: float | None = None) -> int:
    if max_age_seconds is None:
        return _awaiting().count()
    return len(_awaiting_rows(max_age_seconds, None))


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
