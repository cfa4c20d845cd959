"""A reservation's state and Outlook-sync status as HTML, written in Python: "my reservations"
draws them for 50 rows a page, where Django's template engine made most of the page's time
(issue 14's speed target), and the live-status poll (/my/status/) and the detail page draw the
same through ``_state_status.html`` / ``_sync_status.html``, which call these (one wording).
Every value from the database is escaped."""

import datetime as dt

from django.utils.dateformat import format as date_format
from django.utils.html import escape
from django.utils.text import Truncator

from reservations.sync_messages import plain_sync_error

STATE_LABELS = {
    "awaiting_confirmation": "Awaiting confirmation",
    "confirmed": "Confirmed",
    "rejected": "Rejected",
    "conflicted": "Conflicted",
    "cancelled": "Cancelled",
    "released": "Released (no check-in)",
}


def state_label(value: str) -> str:
    return STATE_LABELS.get(value, value.replace("_", " ").capitalize())


def state_status(r, *, detail: bool = False) -> str:
    """The state cell: its label, approval and the reason it isn't confirmed (the detail page's
    wording with ``detail``)."""
    state, approval, reason = r.state, r.approval_state, r.state_reason
    parts = [f'<span class="state state-{escape(state)}">{escape(state_label(state))}</span>\n']
    if approval == "awaiting_approval" and state == "awaiting_confirmation":
        why = ""
        if detail:
            why = (": the room's delegate decides in Outlook." if r.event_id
                   else ": the room's approvers decide before it goes to Outlook.")
        parts.append(f'<div class="small approval approval-awaiting" data-approval="awaiting_approval">Awaiting approval{why}</div>\n')
    elif detail:
        if state == "awaiting_confirmation":
            parts.append('<div class="small muted">Waiting for the room to accept in Outlook.</div>')
        if approval == "accepted":
            parts.append('<div class="small approval" data-approval="accepted">Approved</div>')
        parts.append("\n")
    else:
        if state == "awaiting_confirmation":
            parts.append('<div class="small muted">Waiting for the room to accept</div>')
        parts.append("\n")
    if detail:
        if reason and state != "confirmed":
            parts.append(f'<div class="small reason" id="state-reason">{escape(reason)}</div>')
    elif reason and state not in ("confirmed", "awaiting_confirmation"):
        parts.append(f'<div class="small reason">{escape(reason)}</div>')
    return "".join(parts)


def _next_try(at: dt.datetime, user_tz: dt.tzinfo) -> str:
    return escape(date_format(at.astimezone(user_tz), "H:i T"))


def sync_status(r, *, max_attempts, user_tz: dt.tzinfo, is_staff: bool) -> str:
    """The Outlook-sync cell: in sync, being sent (and the last attempt's trouble), failed (in
    plain words; Graph's answer for admins) or not synced. ``r`` carries its latest sync event
    as ``sync_event_*`` (``portal_selectors.latest_sync_event_subquery``)."""
    sync = r.sync_state
    attempts = getattr(r, "sync_event_attempts", None)
    event_error = getattr(r, "sync_event_error", None)
    next_at = getattr(r, "sync_event_next_attempt_at", None)
    if sync == "synced":
        return '<span class="sync-ok">In sync</span>'
    if sync == "pending":
        html = '<span class="sync-pending">Sending to Outlook…</span>'
        if attempts and event_error:
            then = f" Next try {_next_try(next_at, user_tz)}." if next_at else ""
            html += (f'\n<div class="small">Attempt {escape(attempts)} of {escape(max_attempts)} didn\'t go through. '
                     f"{escape(plain_sync_error(event_error))}{then}</div>")
        return html
    if sync == "error":
        raw = r.sync_error or event_error or ""
        html = f'<span class="sync-error">Sync error</span>\n<div class="small">{escape(plain_sync_error(raw))}</div>\n'
        if is_staff:
            html += f'<details class="small muted"><summary>Outlook\'s answer (admins)</summary>{escape(Truncator(raw).chars(300))}</details>\n'
        if getattr(r, "sync_event_state", None) == "error":
            what = f"Gave up after {escape(attempts)} attempt{'' if attempts == 1 else 's'}; an admin can retry it."
        elif next_at:
            what = f"Attempt {escape(attempts)} of {escape(max_attempts)}; next try {_next_try(next_at, user_tz)}."
        else:
            what = f"Attempts: {escape(attempts or 0)}."
        return html + f'<div class="small muted">{what}</div>'
    html = '<span class="muted">Not synced</span>'
    if not r.room.is_synced:
        html += '<div class="small muted">Room isn\'t in Outlook</div>'
    return html
