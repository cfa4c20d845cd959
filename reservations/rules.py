"""Sync-mode restrictions (SPEC §3 "Restrictions"), checked by the reservation
services before they write anything.

Issue 4 (the auth helper) fills the bodies; until then every check allows the
action. The signatures are the contract with ``reservations.services``: each
check raises ``reservations.exceptions.RuleViolation`` (or ``EditNotAllowed``)
to refuse, and returns ``None`` to allow. ``actor`` is the Django user acting;
services skip the checks entirely for system jobs and Outlook-inbound changes
(actor ``None``). Series are checked per occurrence.
"""


def check_create(*, actor, requested_for, room, kind: str, source: str, subsource: str, rooms_count: int = 1) -> None:
    """May ``actor`` create a reservation of ``kind`` in ``room`` for ``requested_for``?"""
    return None


def check_update(*, actor, reservation, source: str, subsource: str, changes: dict) -> None:
    """May ``actor`` apply ``changes`` ({field: (old, new)}) to ``reservation``?

    Fields: subject, body, start, end, room, arrangement, attendees, requested_for."""
    return None


def check_cancel(*, actor, reservation, source: str, subsource: str) -> None:
    """May ``actor`` cancel ``reservation``?"""
    return None
