"""Every write to reservations goes through here (HackSoft "services"), one module per verb
(Zulip ``zerver/actions``); this package re-exports the public services so callers import
``from reservations import services`` whatever module holds them.

Public services are keyword-only. The user-facing ones (``create``, ``update``, ``cancel``)
run in one durable transaction each: validate (``validation``), check the sync-mode
restrictions (``reservations.rules``), check the room is free (``conflicts``), write the rows
and, for a synced room, the outbox event (``sync_events``). A refused change raises a
``ReservationError`` subclass and writes nothing. A series-wide time change moves the series
too (``series_move``).

The Exchange sync calls ``exchange`` (a push's or an answer's result) and ``from_exchange``
(a meeting seen in Exchange: the general services with the inbound channel filled in); those
write no outbox event, so nothing echoes back. The
booking's ORM bypasses live in ``reservations.fastpaths``."""

from reservations.services import clock  # noqa: F401 (tests move the services' time: services.clock.now)
from reservations.services.approvals import reservation_approve, reservation_decline
from reservations.services.cancel import reservation_cancel, reservation_cancel_many
from reservations.services.checkin import check_in, checkin_window, may_check_in
from reservations.services.conflicts import DEADLOCK_RETRIES
from reservations.services.create import reservation_create
from reservations.services.exchange import (
    WAITING_FOR_ANSWER,
    ExchangeIds,
    PushRecorded,
    SeriesPushRecorded,
    reservation_link_exchange,
    reservation_mark_awaiting_approval,
    reservation_mark_confirmed,
    reservation_mark_conflicted,
    reservation_mark_rejected,
    reservation_record_push,
    reservation_set_attendee_responses,
    reservation_set_sync_state,
    reservation_unlink_exchange,
    series_link_exchange,
    series_link_occurrences,
    series_record_push,
    series_unlink_instances,
)
from reservations.services.from_exchange import (
    reservation_cancel_from_exchange,
    reservation_create_from_exchange,
    reservation_update_from_exchange,
    series_create_from_exchange,
    series_update_from_exchange,
)
from reservations.services.panel import (
    panel_book_now,
    panel_check_in,
    panel_end_early,
    panel_extend,
)
from reservations.services.update import reservation_update
from reservations.services.validation import UNSET

__all__ = [
    "DEADLOCK_RETRIES",
    "UNSET",
    "WAITING_FOR_ANSWER",
    "ExchangeIds",
    "PushRecorded",
    "SeriesPushRecorded",
    "check_in",
    "checkin_window",
    "may_check_in",
    "reservation_approve",
    "panel_book_now",
    "panel_check_in",
    "panel_end_early",
    "panel_extend",
    "reservation_cancel",
    "reservation_cancel_from_exchange",
    "reservation_cancel_many",
    "reservation_create",
    "reservation_create_from_exchange",
    "reservation_decline",
    "reservation_link_exchange",
    "reservation_mark_awaiting_approval",
    "reservation_mark_confirmed",
    "reservation_mark_conflicted",
    "reservation_mark_rejected",
    "reservation_record_push",
    "reservation_set_attendee_responses",
    "reservation_set_sync_state",
    "reservation_unlink_exchange",
    "reservation_update",
    "reservation_update_from_exchange",
    "series_create_from_exchange",
    "series_link_exchange",
    "series_link_occurrences",
    "series_record_push",
    "series_unlink_instances",
    "series_update_from_exchange",
]
