"""What both inbound reconcilers share: a mailbox's copy of a meeting as Graph shows it
(``Copy``), the context of one pull, the page loop, and the bookkeeping of what we saw
(``RoomEvent`` rows, keyed by mailbox and event id)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import F, Lookup, Q
from django.utils import timezone

from exchange_auth.graph import GraphClient, GraphError
from reservations import services
from reservations.models import Reservation, ReservationSeries, SyncEvent, SyncState

from .. import conf
from ..common import meetings
from ..common.notifications import notify_cancelled
from ..models import RoomEvent

logger = logging.getLogger("calendar_sync.inbound")


MAX_DEFERRALS = conf.MAX_DEFERRALS  # after this many re-checks an unlinked copy is judged (own_copies first)


NO_SUBJECT = "(no subject)"


@dataclass
class Copy:
    """The room's copy of one meeting (or one occurrence), parsed from Graph JSON."""

    id: str
    removed: bool = False
    ical_uid: str = ""
    uid: str = ""  # an occurrence's series' iCalUId: its master's, which the pull looks up (SERIES_ICAL_UID)
    change_key: str = ""
    subject: str = ""
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    original_start: dt.datetime | None = None
    organizer: str = ""
    organizer_name: str = ""
    attendees: list[dict] = field(default_factory=list)
    is_cancelled: bool = False
    response: str = ""
    type: str = "singleInstance"
    # An occurrence's series: its master's id and what the pull read of the master (its
    # ``recurrence``, ``start``, ``end``, ``subject``; SERIES_MASTER), None for a single meeting.
    series_master_id: str = ""
    series_master: dict | None = None

    @property
    def uids(self) -> set[str]:
        return {u for u in (self.ical_uid, self.uid) if u}


_FRACTION = re.compile(r"(\.\d{1,6})\d*")
# Graph v1.0 gives an occurrence its own iCalUId and names its series only by ``seriesMasterId``
# (the beta ``uid`` doesn't exist there); the pull reads each master's iCalUId once and puts it on
# the occurrence's JSON under this key (inbound/delta.py).
SERIES_ICAL_UID = "_seriesICalUId"
# ... and the master's pattern and first slot under this one (``Copy.series_master``).
SERIES_MASTER = "_seriesMaster"


def graph_datetime(value: dict | None) -> dt.datetime | None:
    """``{"dateTime": "2030-05-04T09:00:00.0000000", "timeZone": "UTC"}`` → aware UTC datetime."""
    if not value or not value.get("dateTime"):
        return None
    text = _FRACTION.sub(lambda m: m.group(1), value["dateTime"].rstrip("Z"))
    naive = dt.datetime.fromisoformat(text)
    zone = value.get("timeZone") or "UTC"
    try:
        tz = dt.UTC if zone.upper() in ("UTC", "Z") else ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = dt.UTC  # we ask Graph for UTC (Prefer: outlook.timezone); anything else is a surprise
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def parse_copy(raw: dict) -> Copy:
    if "@removed" in raw:
        return Copy(id=raw["id"], removed=True)
    organizer = ((raw.get("organizer") or {}).get("emailAddress") or {})
    return Copy(
        id=raw["id"],
        ical_uid=raw.get("iCalUId") or "",
        uid=raw.get(SERIES_ICAL_UID) or "",
        change_key=raw.get("changeKey") or "",
        subject=(raw.get("subject") or "").strip(),
        start=graph_datetime(raw.get("start")),
        end=graph_datetime(raw.get("end")),
        original_start=_parse_instant(raw.get("originalStart")),
        organizer=(organizer.get("address") or "").lower(),
        organizer_name=organizer.get("name") or "",
        attendees=list(raw.get("attendees") or []),
        is_cancelled=bool(raw.get("isCancelled")),
        response=((raw.get("responseStatus") or {}).get("response") or ""),
        type=raw.get("type") or "singleInstance",
        series_master_id=raw.get("seriesMasterId") or "",
        series_master=raw.get(SERIES_MASTER),
    )


def _parse_instant(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(_FRACTION.sub(lambda m: m.group(1), value.replace("Z", "+00:00")))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(kw_only=True)
class PullContext:
    """One pull of one mailbox: what the reconcilers read and what they found."""

    provider: object
    client: GraphClient
    window_start: dt.datetime
    window_end: dt.datetime
    nightly: bool = False
    now: dt.datetime = field(default_factory=timezone.now)
    stats: Counter = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    deferred: bool = False  # something should be re-checked shortly
    # Each reconciler's context also says which ``mailbox`` it pulls.


def unseen_rows(ctx: PullContext, live) -> list[int]:
    """Primary keys of the rows of ``live`` (a ``RoomEvent`` queryset) whose copy the round
    did not see: only ids are streamed from the database, so a full round of a big, unchanged
    mailbox loads no model rows (the sweep loads just the few that vanished)."""
    return [pk for pk, event_id in live.values_list("pk", "event_id").iterator(chunk_size=2000) if event_id not in ctx.seen]


class _InSubquery(Lookup):
    """``lhs IN (subquery)``, written on PostgreSQL as ``lhs = ANY(ARRAY(subquery))``: the
    subquery then runs once (an InitPlan) and its answer is an index condition on ``lhs``, one
    arm of a BitmapOr. A plain ``IN (subquery)`` (or a join's column) inside an OR is a filter
    checked row by row: a Seq Scan of the whole table."""

    lookup_name = "in_subquery"  # not registered on a field: used as an expression (``of_series_named``)
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


def of_series_named(uids) -> Q:
    """Reservations of the series whose iCalUId is one of ``uids`` (an occurrence's copy names
    its series' iCalUId): ``Q(series__ical_uid__in=uids)``'s rows, as a condition on the
    reservation's own ``series_id``. ORed with the event id, iCalUId and pk that the matching
    queries of both reconcilers ask for, the join's column made PostgreSQL read every
    reservation (about 0.7 s a query at 400,000 rows, twice a changed room on a nightly
    round); this one keeps each arm on an index (rsv_event_id, rsv_ical_uid, the primary key,
    series_id; the series by series_ical_uid)."""
    return Q(_InSubquery(F("series_id"), ReservationSeries.objects.filter(ical_uid__in=uids).values("pk")))


def known_rows(ctx: PullContext, copies: list[Copy]) -> dict[str, RoomEvent]:
    """What we recorded of these copies: one query a page."""
    return {row.event_id: row for row in RoomEvent.objects.filter(mailbox=ctx.mailbox, event_id__in=[c.id for c in copies])}


def reconcile_each(ctx: PullContext, copies: list[Copy], known: dict[str, RoomEvent], decide: Callable[[Copy, RoomEvent | None], str]) -> None:
    """The page loop of both reconcilers. An unchanged copy (same change key, nothing
    deferred) costs nothing; a copy whose Graph call failed is not recorded, so the next
    pull (or the nightly one) tries it again; a transient failure ends the round."""
    for copy in copies:
        ctx.seen.add(copy.id)
        row = known.get(copy.id)
        if not copy.removed and row is not None and row.removed_at is None and row.change_key == copy.change_key and row.outcome != "deferred":
            ctx.stats["unchanged"] += 1
            continue
        try:
            outcome = decide(copy, row)
        except GraphError as exc:
            logger.warning("inbound: %s on %s failed: %s", copy.id[:16], ctx.mailbox, exc)
            outcome = "graph_error"
            if exc.transient:
                raise
        ctx.stats[outcome] += 1


def still_in_mailbox(ctx: PullContext, event_id: str) -> bool:
    """A copy delta reported ``@removed`` is still there (it only left the window): not deleted."""
    found = meetings.get(ctx.client, ctx.mailbox, event_id, select="id,isCancelled,start,end")
    return bool(found) and not found.get("isCancelled")


def cancel_reservation(reservation: Reservation, *, reason: str) -> None:
    """Cancel from Exchange (no outbox event) and tell the people it was for."""
    cancelled = services.reservation_cancel_from_exchange(reservation=reservation, reason=reason)
    if cancelled:
        notify_cancelled(reservation, reason)


def outbound_in_flight(reservation: Reservation) -> bool:
    """The product changed this reservation and the change has not reached Exchange yet."""
    if reservation.sync_state != SyncState.PENDING:
        return False
    return SyncEvent.objects.filter(
        Q(reservation=reservation) | Q(series_id=reservation.series_id, series__isnull=False),
        state__in=[SyncEvent.State.NEW, SyncEvent.State.PROCESSING],
    ).exists()


def record_copy(
    ctx: PullContext, copy: Copy, row: RoomEvent | None, *, outcome: str, reservation: Reservation | None = None,
    note: str = "", removed: bool = False, change_key: str | None = None,
) -> RoomEvent:
    """What we saw of this copy and decided (a ``RoomEvent`` row of ``ctx.mailbox``)."""
    values = {
        "ical_uid": copy.ical_uid, "change_key": copy.change_key if change_key is None else change_key,
        "subject": copy.subject[:255], "organizer": copy.organizer[:254], "start": copy.start, "end": copy.end,
        "outcome": outcome, "note": note[:500], "removed_at": ctx.now if removed else None,
    }
    if reservation is not None:
        values["reservation"] = reservation
    if outcome != "deferred":
        values["deferrals"] = 0
    if row is None:
        # A copy the page's read found no row for (the mailbox is ours while the pull holds
        # its lock): one INSERT, not update_or_create's SELECT FOR UPDATE and savepoint. A
        # row there after all (a caller without the page's read) takes the general way.
        # Outside a transaction the INSERT runs alone (autocommit: a failed one breaks nothing).
        try:
            if not transaction.get_connection().in_atomic_block:
                return RoomEvent.objects.create(mailbox=ctx.mailbox, event_id=copy.id, **values)
            with transaction.atomic():
                return RoomEvent.objects.create(mailbox=ctx.mailbox, event_id=copy.id, **values)
        except IntegrityError:
            pass
    row, _ = RoomEvent.objects.update_or_create(mailbox=ctx.mailbox, event_id=copy.id, defaults=values)
    return row


def mark_removed(ctx: PullContext, event_id: str, row: RoomEvent | None, *, outcome: str = "removed") -> None:
    if row is not None:
        RoomEvent.objects.filter(pk=row.pk).update(removed_at=ctx.now, outcome=outcome)
    else:
        RoomEvent.objects.filter(mailbox=ctx.mailbox, event_id=event_id).update(removed_at=ctx.now, outcome=outcome)


