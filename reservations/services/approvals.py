"""Approval inside the product (SPEC §2 external approval state, §7 "Approvals").

A room flagged ``needs_approval`` has approvers (a Django group per room, ``Room.approvers``).
A booking of such a room is made ``awaiting_confirmation`` with approval state
``awaiting_approval`` (``create``): it holds the room — a pending approval is an active
reservation, so nobody else books the slot meanwhile — and nothing is written to Exchange.

- ``reservation_approve``: an approver (or an admin) approves → approval ``accepted``; a
  synced room's meeting is then written as any booking's is (the create event is recorded
  now, pushed after commit, and the room's answer confirms it); a room without sync is
  ``confirmed`` at once.
- ``reservation_decline``: → ``rejected``, approval ``declined``, the reason given (optional);
  no meeting is ever written.

A series is approved or declined as a whole: deciding one occurrence decides every occurrence
of its series still waiting. The requester (and the person it is for) is emailed either way.
Reservations whose approval ran past ``approval_time_limit`` are rejected by the clean-up
job (``calendar_sync.outbound.confirm.clean_up_unapproved``)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q

from reservations.exceptions import NotActive, NotPermitted
from reservations.models import ApprovalState, Reservation, State, SyncState
from reservations.services import clock
from reservations.services.sync_events import channel, record_create
from reservations.services.validation import REASON_MAX_LENGTH
from workplace.models import Room

logger = logging.getLogger("reservations")

DECLINED = "{room}'s approver declined the request."


def may_approve(user: AbstractBaseUser | None, room: Room) -> bool:
    """``user`` decides on ``room``'s bookings: a member of its approvers group, or an admin."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    return bool(room.approvers_id) and user.groups.filter(pk=room.approvers_id).exists()


def awaiting_product_approval(reservation: Reservation) -> bool:
    """Waits for the room's approvers in the product (not for a delegate in Exchange)."""
    return (
        reservation.approval_state == ApprovalState.AWAITING_APPROVAL and reservation.room.needs_approval
        and not reservation.event_id and reservation.sync_state == SyncState.NOT_SYNCED
    )


def _rows(reservation: Reservation) -> list[Reservation]:
    """The reservation, or every waiting occurrence of its series, locked."""
    where = Q(series_id=reservation.series_id) if reservation.series_id else Q(pk=reservation.pk)
    return list(
        Reservation.objects.select_for_update(of=("self",)).filter(where, state=State.AWAITING_CONFIRMATION, approval_state=ApprovalState.AWAITING_APPROVAL)
        .select_related("room", "series").order_by("start", "pk")
    )


def _check(actor: AbstractBaseUser, reservation: Reservation) -> None:
    if not may_approve(actor, reservation.room):
        raise NotPermitted(f"Only {reservation.room.name}'s approvers can approve or decline its bookings.")
    if not awaiting_product_approval(reservation) or reservation.state != State.AWAITING_CONFIRMATION:
        raise NotActive("This reservation is not waiting for approval.", extra={"approval_state": [reservation.approval_state]})


def reservation_approve(*, actor: AbstractBaseUser, reservation: Reservation) -> Reservation:
    """Approve (see the module docstring). Raises ``NotPermitted`` / ``NotActive``; changes nothing then."""
    _check(actor, reservation)
    with transaction.atomic(durable=True):
        rows = _rows(reservation)
        if not rows:
            raise NotActive("This reservation is not waiting for approval.")
        room = rows[0].room
        now = clock.now()
        values = {"approval_state": ApprovalState.ACCEPTED, "approval_decided_by": actor, "updated_at": now}
        if room.is_synced:
            values["sync_state"] = SyncState.PENDING
        else:
            values.update(state=State.CONFIRMED, state_reason="")
        Reservation.objects.filter(pk__in=[r.pk for r in rows]).update(**values)
        for r in rows:
            for field, value in values.items():
                setattr(r, field, value)
        if room.is_synced:
            # The approval is no user's change of the meeting: it is written with the system-to-system
            # credential and organized as the mode table says for the requester (SPEC §3).
            series = rows[0].series if rows[0].series_id else None
            record_create(rows=rows, series=series, via=channel(None, rows[0].source, rows[0].subsource))
    reservation.refresh_from_db()
    _tell(reservation, approved=True, reason="")
    return reservation


def reservation_decline(*, actor: AbstractBaseUser, reservation: Reservation, reason: str = "") -> Reservation:
    """Decline (see the module docstring): rejected, the room freed, no meeting written."""
    _check(actor, reservation)
    reason = (reason or "").strip()
    sentence = DECLINED.format(room=reservation.room.name) + (f" {reason}" if reason else "")
    with transaction.atomic(durable=True):
        rows = _rows(reservation)
        if not rows:
            raise NotActive("This reservation is not waiting for approval.")
        Reservation.objects.filter(pk__in=[r.pk for r in rows]).update(
            state=State.REJECTED, state_reason=sentence[:REASON_MAX_LENGTH], approval_state=ApprovalState.DECLINED,
            approval_decided_by=actor, updated_at=clock.now(),
        )
    reservation.refresh_from_db()
    _tell(reservation, approved=False, reason=sentence)
    return reservation


def _tell(reservation: Reservation, *, approved: bool, reason: str) -> None:
    """Mail the requester and the person it is for. The decision stands whatever the mail server does."""
    recipients = sorted({u.email for u in (reservation.requested_for, reservation.requested_by) if u is not None and u.email})
    if not recipients:
        return
    room = reservation.room
    local = reservation.start.astimezone(room.building.tzinfo)
    when = f"{local:%A %d %B %Y at %H:%M} ({room.building.timezone})"
    if approved:
        subject = f"Reservation approved: {reservation.subject}"
        body = f"Your reservation of {room.name} on {when} was approved."
        if room.is_synced:
            body += " It is being added to Outlook now."
    else:
        subject = f"Reservation declined: {reservation.subject}"
        body = f"Your reservation of {room.name} on {when} was declined.\n\nReason: {reason}\n\nPlease pick another room or time in the portal."
    try:
        send_mail(subject, body + "\n", settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:
        logger.exception("approval email for reservation %s failed", reservation.pk)
