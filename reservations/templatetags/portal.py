"""Template helpers of the portal: the Outlook connection badge in the header and
the words shown for reservation and sync states."""

from django import template

from exchange_auth import properties
from exchange_auth.providers import active_provider
from exchange_auth.views import connection_status
from reservations.sync_messages import plain_sync_error
from workplace.models import Room

register = template.Library()

STATE_LABELS = {
    "awaiting_confirmation": "Awaiting confirmation",
    "confirmed": "Confirmed",
    "rejected": "Rejected",
    "conflicted": "Conflicted",
    "cancelled": "Cancelled",
}


@register.inclusion_tag("reservations/_outlook_status.html", takes_context=True)
def outlook_status(context):
    """Personal mode: connected / not connected / reconnect, linking to the settings page.
    Any mode: a reconnect prompt when the user's connection was revoked."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    provider = active_provider()
    if provider is None:
        return {"show": False}
    mode = properties.sync_mode().value
    status = connection_status(user, provider)
    return {"show": mode == "Personal" or status["state"] == "reconnect", "mode": mode, "path": request.get_full_path(), **status}


@register.filter
def state_label(value: str) -> str:
    return STATE_LABELS.get(value, value.replace("_", " ").capitalize())


@register.filter(name="plain_sync_error")
def plain_sync_error_filter(value: str) -> str:
    """A stored Graph error as the employee reads it (reservations/sync_messages.py)."""
    return plain_sync_error(value or "")


@register.simple_tag(takes_context=True)
def is_approver(context) -> bool:
    """The signed-in user approves some room's bookings (the "Approvals" link): staff, or a
    member of a room's approvers group. One query per request, only for non-staff."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    cached = getattr(request, "_is_approver", None)
    if cached is None:
        cached = request._is_approver = Room.objects.filter(needs_approval=True, approvers__in=user.groups.all()).exists()
    return cached
