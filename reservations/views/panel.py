"""The room panel: a kiosk page for the tablet at a room's door (``/panel/``), its live state
(``/panel/state/``, polled) and its buttons (``/panel/<action>/``: book, extend, end, check-in).

No person's session: the device signs in with its own token (``workplace.RoomPanel``, made in
admin). The admin's URL carries the token once (``?token=``); the page then keeps it in an
HttpOnly cookie and redirects to the bare URL, so it stays out of the address bar, the history
and access logs. A header ``Authorization: Panel <token>`` works too (for scripts). An unknown
or revoked token is refused (the page: "signed out", the JSON endpoints: 401, and the cookie is
dropped so a revoked tablet's further polls carry no token).

Requests bearing an unknown or revoked token are limited per client address
(PANEL_FAILED_AUTH_PER_MINUTE, ``throttling.client_address``: REMOTE_ADDR unless
TRUSTED_PROXIES says otherwise): beyond it every token from that address is refused with 429
and Retry-After (the page: "signed out" with the message, reloading itself when the window
ends; JSON: the message) until the minute ends, without being looked at, so a guessing
client can't test its guesses. A valid device is hurt by a neighbour's failures only when
they share an address (the same NAT or proxy without TRUSTED_PROXIES); its own successful
requests are never counted."""

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from reservations import parsing, services
from reservations.exceptions import InvalidReservation, ReservationError
from reservations.panel_state import panel_state
from workplace import throttling
from workplace.models import RoomPanel
from workplace.panels import room_panel_for_token

COOKIE = "room_panel"
COOKIE_MAX_AGE = 400 * 24 * 3600  # browsers cap cookies at 400 days
POLL_SECONDS = 10


def _token_of(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Panel "):
        return header[len("Panel "):].strip()
    return request.COOKIES.get(COOKIE, "")


FAILED_AUTH = "panel_failed_auth"
SIGNED_OUT = "reservations/panel_signed_out.html"


def _device(request: HttpRequest, token: str | None) -> tuple[RoomPanel | None, throttling.Refusal | None]:
    """The live device ``token`` belongs to (None: no token, an unknown or revoked one), or the
    refusal when the client's address is over its failed attempts (the token not looked at)."""
    if not token:
        return None, None  # nothing to guess with: not counted (a tablet whose cookie was dropped)
    return throttling.limit_failures(request, FAILED_AUTH, throttling.client_address(request), lambda: room_panel_for_token(token))


def panel_of(request: HttpRequest) -> tuple[RoomPanel | None, throttling.Refusal | None]:
    return _device(request, _token_of(request))


def _signed_out(request: HttpRequest, *, status: int = 403) -> HttpResponse:
    response = render(request, SIGNED_OUT, status=status)
    response.delete_cookie(COOKIE, path="/panel/")
    return response


def _too_many(request: HttpRequest, refusal: throttling.Refusal) -> HttpResponse:
    return throttling.too_many(request, refusal, template=SIGNED_OUT, context={"retry_after": refusal.retry_after})


def _refused() -> JsonResponse:
    response = JsonResponse({"message": "This panel is signed out: its token is unknown or was revoked.", "extra": {}}, status=401)
    response.delete_cookie(COOKIE, path="/panel/")
    return response


@never_cache
@require_GET
def panel(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("token")
    if token is not None:
        device, refusal = _device(request, token)
        if refusal is not None:
            return _too_many(request, refusal)
        if device is None:
            return _signed_out(request)
        response = redirect("portal:panel")
        response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, path="/panel/", httponly=True, samesite="Strict",
                            secure=request.is_secure())
        return response
    device, refusal = panel_of(request)
    if refusal is not None:
        return _too_many(request, refusal)
    if device is None:
        return _signed_out(request)
    return render(request, "reservations/panel.html", {
        "state": panel_state(device), "csrf_token": get_token(request), "poll_seconds": POLL_SECONDS, "device": device,
    })


@never_cache
@require_GET
def panel_state_view(request: HttpRequest) -> JsonResponse:
    device, refusal = panel_of(request)
    if refusal is not None:
        return throttling.too_many(request, refusal)
    if device is None:
        return _refused()
    refused = throttling.limit(request, "panel_state", f"panel_{device.pk}")
    if refused is not None:
        return throttling.too_many(request, refused)
    return JsonResponse(panel_state(device))


def _minutes(request: HttpRequest) -> int:
    value = request.POST.get("minutes", "")
    if not value.isascii() or not value.isdigit() or len(value) > 3:
        raise InvalidReservation("Say how many minutes.", extra={"minutes": ["A whole number of minutes."]})
    return int(value)


def _reservation_id(request: HttpRequest) -> int:
    try:
        return parsing.object_id(request.POST.get("reservation", ""))
    except ValidationError:
        raise InvalidReservation("Say which meeting.", extra={"reservation": ["A reservation id."]}) from None


ACTIONS = {
    "book": lambda device, request: services.panel_book_now(panel=device, minutes=_minutes(request)),
    "extend": lambda device, request: services.panel_extend(panel=device, reservation_id=_reservation_id(request), minutes=_minutes(request)),
    "end": lambda device, request: services.panel_end_early(panel=device, reservation_id=_reservation_id(request)),
    "check-in": lambda device, request: services.panel_check_in(panel=device, reservation_id=_reservation_id(request)),
}


@never_cache
@require_POST
def panel_action(request: HttpRequest, action: str) -> JsonResponse:
    """One of the panel's buttons; answers with the new state, or ``{message, extra}`` and the
    error's status (nothing changed)."""
    device, refusal = panel_of(request)
    if refusal is not None:
        return throttling.too_many(request, refusal)
    if device is None:
        return _refused()
    # Per device, whatever the button (PANEL_ACTIONS_PER_MINUTE): a stuck or scripted tablet
    # can't flood the services and Exchange. Nothing changed; the panel shows the message.
    refused = throttling.limit(request, "panel_actions", f"panel_{device.pk}")
    if refused is not None:
        return throttling.too_many(request, refused)
    run = ACTIONS.get(action)
    if run is None:
        return JsonResponse({"message": "No such panel action.", "extra": {}}, status=404)
    try:
        run(device, request)
    except ReservationError as exc:
        return JsonResponse({"message": exc.message, "extra": exc.extra, "code": exc.code, "state": panel_state(device)}, status=exc.status_code)
    return JsonResponse({"message": "", "state": panel_state(device)})
