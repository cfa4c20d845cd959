"""Connect, reconnect and disconnect Outlook (employees), and connect the
provider's delegated user (admins). Both use the authorization code + PKCE
flow through the provider's authority; the flow's state waits in the session.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import select_template
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from exchange_auth import credentials, properties
from exchange_auth.credentials import CredentialError
from exchange_auth.models import CalendarProvider, PersonalToken
from exchange_auth.providers import active_provider, active_providers

logger = logging.getLogger(__name__)

FLOW_SESSION_KEY = "exchange_auth_flow"


def redirect_uri() -> str:
    return settings.PUBLIC_BASE_URL + reverse("exchange_auth:callback")


def _base_template():
    # The portal's base template when the reservations app provides one.
    return select_template(["base.html", "exchange_auth/standalone_base.html"])


def connection_status(user, provider: CalendarProvider | None) -> dict:
    """What the portal shows about the user's Outlook connection."""
    row = PersonalToken.objects.filter(user=user, provider=provider).first() if provider else None
    if row is None:
        state = "not_connected"
    elif row.needs_reconnect:
        state = "reconnect"
    else:
        state = "connected"
    return {"state": state, "token": row}


def _chosen_provider(request: HttpRequest) -> CalendarProvider | None:
    """The provider a connect/disconnect names (one tenant among several), else the default one."""
    chosen = request.POST.get("provider", "")
    if chosen.isascii() and chosen.isdigit():
        return next((p for p in active_providers() if p.pk == int(chosen)), None)
    return active_provider()


@login_required
@require_GET
def connection(request: HttpRequest) -> HttpResponse:
    """The employee's Outlook connection: one per tenant the company's rooms live in (most
    companies have one); the default provider's first."""
    provider = active_provider()
    others = [p for p in active_providers() if provider is None or p.pk != provider.pk]
    context = {
        "base_template": _base_template(),
        "provider": provider,
        "mode": properties.sync_mode(),
        "next": _safe_next(request, request.GET.get("next", "")),
        **connection_status(request.user, provider),
        "other_tenants": [{"provider": p, **connection_status(request.user, p)} for p in others],
    }
    return render(request, "exchange_auth/connection.html", context)


@login_required
@require_POST
def connect(request: HttpRequest) -> HttpResponse:
    """Start (or restart, to reconnect) the employee's sign-in to Outlook, in the tenant named."""
    provider = _chosen_provider(request)
    if provider is None:
        messages.error(request, "Outlook can't be connected: no calendar provider is configured.")
        return redirect("exchange_auth:connection")
    return _begin(request, provider, purpose="personal", next_url=_safe_next(request, request.POST.get("next", "")),
                  login_hint=request.user.email)


@login_required
@require_POST
def disconnect(request: HttpRequest) -> HttpResponse:
    chosen = request.POST.get("provider", "")
    removed = credentials.disconnect_personal(_chosen_provider(request) if chosen else None, request.user)
    if removed:
        messages.success(request, "Outlook is disconnected. Synced rooms can't be booked in Personal mode until you connect again.")
    return redirect("exchange_auth:connection")


@staff_member_required
@require_POST
def provider_connect(request: HttpRequest, pk: int) -> HttpResponse:
    """Admin: sign in as the provider's delegated user (a POST, like every start of a
    sign-in: a link or an image on another site can't replace a sign-in in progress)."""
    return begin_delegated_sign_in(request, get_object_or_404(CalendarProvider, pk=pk))


def begin_delegated_sign_in(request: HttpRequest, provider: CalendarProvider) -> HttpResponse:
    """Start the delegated user's sign-in (also the admin action's answer, itself a POST)."""
    back = reverse("admin:exchange_auth_calendarprovider_change", args=[provider.pk])
    return _begin(request, provider, purpose="delegated", next_url=back, login_hint=provider.delegated_user_email)


def _begin(request: HttpRequest, provider: CalendarProvider, *, purpose: str, next_url: str, login_hint: str) -> HttpResponse:
    try:
        flow = credentials.begin_auth_code_flow(provider, redirect_uri=redirect_uri(), login_hint=login_hint)
    except CredentialError as exc:
        messages.error(request, f"Could not start the sign-in: {exc.message}")
        return HttpResponseRedirect(next_url or reverse("exchange_auth:connection"))
    request.session[FLOW_SESSION_KEY] = {"purpose": purpose, "provider_id": provider.pk, "flow": flow, "next": next_url}
    return HttpResponseRedirect(flow["auth_uri"])


@login_required
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """The identity provider sends the user back here with a code (or an error).

    The response must carry the ``state`` of the sign-in this session started before
    anything is done with it, an error included: a forged ``?error=...`` link can't
    discard a sign-in in progress."""
    pending = request.session.get(FLOW_SESSION_KEY)
    if not pending:
        messages.error(request, "This sign-in response was not expected (it may have been used already). Start again.")
        return redirect("exchange_auth:connection")
    if not constant_time_compare(request.GET.get("state", ""), str((pending.get("flow") or {}).get("state", ""))):
        logger.warning("Outlook sign-in response with a state that doesn't match ignored (user %s)", request.user.pk)
        messages.error(request, "This sign-in response doesn't match the sign-in that was started; it was ignored.")
        return redirect("exchange_auth:connection")
    del request.session[FLOW_SESSION_KEY]
    provider = CalendarProvider.objects.filter(pk=pending["provider_id"]).first()
    next_url = pending.get("next") or reverse("exchange_auth:connection")
    if provider is None:
        messages.error(request, "The calendar provider was removed during the sign-in.")
        return HttpResponseRedirect(next_url)
    if "error" in request.GET:
        description = request.GET.get("error_description", "").split(" Trace ID:")[0]
        messages.error(request, f"Sign-in was refused: {request.GET['error']}: {description}")
        return HttpResponseRedirect(next_url)
    try:
        connection = credentials.complete_auth_code_flow(provider, pending["flow"], request.GET.dict())
        if pending["purpose"] == "delegated":
            if not request.user.is_staff:
                raise CredentialError("Only an admin can connect the delegated user.")
            credentials.connect_delegated_user(provider, connection)
            messages.success(request, f"Delegated user {connection.account_email} is connected to {provider.name}.")
        else:
            credentials.connect_personal(provider, request.user, connection)
            messages.success(request, f"Outlook is connected as {connection.account_email}.")
    except CredentialError as exc:
        logger.info("Outlook sign-in failed for user %s: %s", request.user.pk, exc.cause)
        messages.error(request, exc.message)
    return HttpResponseRedirect(next_url)


def _safe_next(request: HttpRequest, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return value
    return ""
