"""Which calendar provider is in use."""

from exchange_auth.models import CalendarProvider


class NoActiveProvider(LookupError):
    """No calendar provider is active: nothing syncs until an admin activates one."""


def active_provider() -> CalendarProvider | None:
    """The active provider (at most one exists: a partial unique constraint), or None."""
    return CalendarProvider.objects.filter(active=True).first()


def require_active_provider() -> CalendarProvider:
    provider = active_provider()
    if provider is None:
        raise NoActiveProvider("No calendar provider is active. An admin activates one under Calendar providers.")
    return provider
