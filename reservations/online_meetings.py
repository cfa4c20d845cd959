"""Whether a Teams meeting can be asked for: checks registered by the app that talks to
Exchange (calendar_sync registers one in its AppConfig.ready: the organizer calendar's
allowedOnlineMeetingProviders), asked by the create service before anything is written.
reservations doesn't import calendar_sync (the layers), so the check comes to it."""

from __future__ import annotations

from collections.abc import Callable

# check(room=, actor=, requested_for=, kind=, source=, subsource=) -> "" (fine) or a sentence for the employee
_checks: list[Callable[..., str]] = []


def register_check(check: Callable[..., str]) -> None:
    if check not in _checks:
        _checks.append(check)


def refusal(**context) -> str:
    """The first registered check's reason for refusing a Teams meeting, else ""."""
    for check in list(_checks):
        reason = check(**context)
        if reason:
            return reason
    return ""
