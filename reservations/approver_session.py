"""Whether the signed-in user approves some room's bookings, kept in their session so the
portal's "Approvals" link costs no query per page: set at sign-in (``user_logged_in``) and
refreshed on each visit of the Approvals page (an approver added later finds the page there,
or at their next sign-in)."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from workplace.models import Room

APPROVER_SESSION_KEY = "portal_is_approver"


def approves_some_room(user) -> bool:
    return Room.objects.filter(needs_approval=True, approvers__in=user.groups.all()).exists()


def remember(request, user) -> bool:
    flag = approves_some_room(user)
    if request is not None and hasattr(request, "session"):
        request.session[APPROVER_SESSION_KEY] = flag
    return flag


@receiver(user_logged_in, dispatch_uid="reservations.approver_session")
def _on_sign_in(sender, request, user, **kwargs) -> None:
    remember(request, user)
