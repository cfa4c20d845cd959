"""Cancelling one reservation, or several ticked on my reservations."""


from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from exchange_auth.credentials import CredentialError
from reservations import parsing, portal_selectors, rules, selectors, services
from reservations.exceptions import ReservationError
from reservations.forms import CancelForm
from reservations.models import ACTIVE_STATES, Reservation, Source

from .common import get_reservation, state_word


def _cancel_kwargs(form: CancelForm, offered: bool) -> dict:
    """The service's arguments. "Also cancel the meeting on people's calendars" is passed only
    where it was offered (an unticked box is ``cancel_meeting=False``); elsewhere the service's
    default applies and the rules decide what happens to the meeting."""
    kwargs = {"reason": form.cleaned_data.get("reason") or ""}
    if offered:
        kwargs["cancel_meeting"] = bool(form.cleaned_data.get("cancel_meeting"))
    return kwargs


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def cancel(request: HttpRequest, reservation_id: int) -> HttpResponse:
    """The single and recurring cancel dialogs (a page without JavaScript)."""
    reservation = get_reservation(request, reservation_id)
    caps = rules.ui_capabilities(request.user, reservation=reservation)
    remaining = []
    if reservation.series_id:
        remaining = list(
            Reservation.objects.filter(series_id=reservation.series_id, state__in=ACTIVE_STATES, end__gt=timezone.now())
            .select_related("room__building").order_by("start")
        )
    offer = rules.offer_cancel_meeting_choice(remaining) if len(remaining) > 1 else caps["offer_cancel_meeting_choice"]
    if reservation.state not in ACTIVE_STATES or reservation.end <= timezone.now():
        caps = {**caps, "can_cancel": False, "cancel_reason": f"This reservation is {state_word(reservation)}; it can't be cancelled."}
    form = CancelForm(request.POST if request.method == "POST" else None, initial={"scope": "occurrence"})
    if request.method == "POST" and caps["can_cancel"] and form.is_valid():
        scope = form.cleaned_data.get("scope") or "occurrence"
        try:
            done = services.reservation_cancel(
                actor=request.user, reservation=reservation, scope=scope if reservation.series_id else "occurrence",
                source=Source.PORTAL, **_cancel_kwargs(form, offer),
            )
        except ReservationError as exc:
            form.add_error(None, exc.message)
        except CredentialError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _cancelled_message(done, reservation))
            return redirect("portal:my_reservations")
    context = {
        "reservation": reservation, "caps": caps, "form": form, "offer_cancel_meeting": offer,
        "remaining": remaining, "dialog": "recurring" if reservation.series_id else "single",
        "local_start": reservation.start.astimezone(reservation.room.building.tzinfo),
        "local_end": reservation.end.astimezone(reservation.room.building.tzinfo),
    }
    return render(request, "reservations/cancel.html", context)


def _cancelled_message(done: list[Reservation], reservation: Reservation) -> str:
    if not done:
        return f"“{reservation.subject}” was already cancelled."
    if len(done) == 1:
        return f"Cancelled “{done[0].subject}”."
    return f"Cancelled {len(done)} reservations."


def _selected_ids(request: HttpRequest) -> list[int]:
    ids = []
    for value in request.POST.getlist("ids"):
        try:
            ids.append(parsing.object_id(value))
        except ValidationError:
            continue
    return sorted(set(ids))[:500]


@login_required
@require_POST
def cancel_selected(request: HttpRequest) -> HttpResponse:
    """The multi-select cancel dialog: the selection arrives from "my reservations"; a second
    POST with ``confirm`` cancels them all (or none, when one is refused)."""
    ids = _selected_ids(request)
    rows = list(
selectors.reservation_visible_to(user=request.user).filter(pk__in=ids).order_by("start")
    )
    if not rows:
        messages.error(request, "Choose at least one reservation to cancel.")
        return redirect("portal:my_reservations")
    caps = portal_selectors.capabilities_for(actor=request.user, reservations=rows)
    # The choice is offered only when the product can choose for every selected reservation.
    offer = all(caps[row.pk]["offer_cancel_meeting_choice"] for row in rows)
    refused = [(row, caps[row.pk]["cancel_reason"]) for row in rows if not caps[row.pk]["can_cancel"]]
    form = CancelForm(request.POST if "confirm" in request.POST else None)
    if "confirm" in request.POST and form.is_valid():
        try:
            done = services.reservation_cancel_many(
                actor=request.user, reservations=rows, source=Source.PORTAL, **_cancel_kwargs(form, offer)
            )
        except ReservationError as exc:
            form.add_error(None, exc.message)
        except CredentialError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _cancelled_message(done, rows[0]))
            return redirect("portal:my_reservations")
    items = [{"r": row, "local_start": row.start.astimezone(row.room.building.tzinfo),
              "local_end": row.end.astimezone(row.room.building.tzinfo)} for row in rows]
    # The note says which of the selection the room handles (room-organized or made in Outlook), not
    # a general rule that may apply to none of them (rooms outside Outlook have no meeting at all).
    handled_by_room = [row for row in rows if row.room.is_synced and not caps[row.pk]["offer_cancel_meeting_choice"]]
    context = {"items": items, "form": form, "offer_cancel_meeting": offer, "refused": refused, "dialog": "multi",
               "handled_by_room": handled_by_room}
    return render(request, "reservations/cancel_selected.html", context)
