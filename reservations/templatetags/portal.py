"""Template helpers of the portal: the Outlook connection badge in the header and
the words shown for reservation and sync states."""

from django import template
from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from exchange_auth import properties
from exchange_auth.models import CalendarProvider
from exchange_auth.providers import cached_default_provider_id
from exchange_auth.views import connection_status
from reservations import status_html
from reservations.approver_session import APPROVER_SESSION_KEY
from reservations.forms import field_html
from reservations.sync_messages import plain_sync_error

register = template.Library()

_reversed: dict[tuple, str] = {}


@register.inclusion_tag("reservations/_outlook_status.html", takes_context=True)
def outlook_status(context):
    """Personal mode: connected / not connected / reconnect, linking to the settings page.
    Any mode: a reconnect prompt when the user's connection was revoked."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    provider_id = cached_default_provider_id()  # the shared cache: no provider query on each page
    if provider_id is None:
        return {"show": False}
    mode = properties.sync_mode().value
    status = connection_status(user, CalendarProvider(pk=provider_id))  # only its id is read
    return {"show": mode == "Personal" or status["state"] == "reconnect", "mode": mode, "path": request.get_full_path(), **status}


@register.filter
def as_field(field) -> SafeString:
    """``{% include "reservations/_field.html" with field=… %}`` drawn in Python (``forms.field_html``:
    the same markup, without a template include per field)."""
    return field_html(field)


@register.filter
def state_label(value: str) -> str:
    return status_html.state_label(value)


@register.simple_tag(takes_context=True)
def state_status(context) -> SafeString:
    """``_state_status.html``: the state cell of ``r`` (``detail``: the detail page's wording)."""
    return mark_safe(status_html.state_status(context["r"], detail=bool(context.get("detail"))))  # noqa: S308 - escaped there


@register.simple_tag(takes_context=True)
def sync_status(context) -> SafeString:
    """``_sync_status.html``: the Outlook-sync cell of ``r``."""
    user = context.get("user")
    return mark_safe(status_html.sync_status(  # noqa: S308 - escaped there
        context["r"], max_attempts=context.get("max_attempts"), user_tz=context.get("user_tz") or timezone.get_current_timezone(),
        is_staff=bool(getattr(user, "is_staff", False))))


@register.filter(name="plain_sync_error")
def plain_sync_error_filter(value: str) -> str:
    """A stored Graph error as the employee reads it (reservations/sync_messages.py)."""
    return plain_sync_error(value or "")


@register.simple_tag(takes_context=True)
def is_approver(context) -> bool:
    """The signed-in user approves some room's bookings (the "Approvals" link): staff, or a
    member of a room's approvers group — noted in the session at sign-in and on each visit of
    the Approvals page (``views.approvals.APPROVER_SESSION_KEY``), so drawing a page costs no query."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return bool(user.is_staff or request.session.get(APPROVER_SESSION_KEY))


@register.simple_tag
def fixed_url(name: str) -> str:
    """``{% url name %}`` for a URL without arguments, reversed once per name, script prefix
    and URLconf (as ``reservations.links.id_url``): the layout's links are on every page, and
    a ``reverse()`` each made a good part of drawing it."""
    key = (name, get_script_prefix(), get_resolver(get_urlconf()))
    url = _reversed.get(key)
    if url is None:
        url = _reversed[key] = reverse(name)
    return url
