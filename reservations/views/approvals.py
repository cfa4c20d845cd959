"""Approvals: the bookings of rooms that need approval, waiting for the signed-in approver
(a member of the room's approvers group; admins see every room's), with approve / decline
(an optional reason the requester reads). Deciding is ``services.reservation_approve`` /
``reservation_decline``: an approved booking's meeting is then written to Outlook as any
booking's; a declined one never is."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from reservations import approver_session, selectors, services
from reservations.exceptions import ReservationError


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("decline", "Decline")])
    reason = forms.CharField(max_length=400, required=False, label="Reason (optional, for a decline)",
                             widget=forms.TextInput(attrs={"autocomplete": "off"}))


@login_required
@require_GET
def approvals(request: HttpRequest) -> HttpResponse:
    approver_session.remember(request, request.user)
    pending = list(selectors.approvals_pending_for(user=request.user)[:200])
    rows = [
        {"r": r, "start": r.start.astimezone(r.room.building.tzinfo), "end": r.end.astimezone(r.room.building.tzinfo),
         "form": DecideForm(prefix=f"r{r.pk}")}
        for r in pending
    ]
    return render(request, "reservations/approvals.html", {"rows": rows})


@login_required
@require_POST
def decide(request: HttpRequest, reservation_id: int) -> HttpResponse:
    reservation = selectors.reservation_get_for_approver(user=request.user, reservation_id=reservation_id)
    if reservation is None:
        raise Http404("No such reservation.")
    form = DecideForm(request.POST, prefix=f"r{reservation.pk}")
    if not form.is_valid():
        messages.error(request, "Choose approve or decline (a reason has at most 400 characters).")
        return redirect("portal:approvals")
    try:
        if form.cleaned_data["decision"] == "approve":
            services.reservation_approve(actor=request.user, reservation=reservation)
            messages.success(request, f"Approved “{reservation.subject}”; {reservation.requested_for.get_full_name() or reservation.requested_for} is told.")
        else:
            services.reservation_decline(actor=request.user, reservation=reservation, reason=form.cleaned_data["reason"])
            messages.success(request, f"Declined “{reservation.subject}”; {reservation.requested_for.get_full_name() or reservation.requested_for} is told.")
    except ReservationError as exc:
        messages.error(request, exc.message)
    return redirect("portal:approvals")
