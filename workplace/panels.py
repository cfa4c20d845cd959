"""Room panels' device tokens: ``room_panel_create`` (the token, shown once), ``room_panel_for_token``
(the device a request's token belongs to, or None) and ``room_panel_revoke``.

A panel is no person: it gets its own user (no password, no mailbox, not staff) that acts for it,
so what it books names the device, and nothing a person's session reaches is reachable with it."""

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from workplace.models import Profile, Room, RoomPanel, panel_token_digest

# A device's last_seen_at is written at most this often (a panel polls every few seconds).
LAST_SEEN_RESOLUTION = dt.timedelta(minutes=1)


@transaction.atomic
def room_panel_create(*, room: Room, name: str) -> tuple[RoomPanel, str]:
    """A new panel for ``room`` and its token (kept only as a digest: show it now or never)."""
    token = RoomPanel.new_token()
    user_model = get_user_model()
    base = f"panel-{slugify(room.name)[:40] or room.pk}"
    username, n = base, 1
    while user_model.objects.filter(username=username).exists():
        n += 1
        username = f"{base}-{n}"
    user = user_model(username=username, first_name=f"Room panel: {name}"[:150], email="")
    user.set_unusable_password()
    user.save()
    # No mailbox: the mode table has the provider's organizer account organize its meetings.
    Profile.objects.update_or_create(user=user, defaults={"timezone": room.building.timezone, "has_mailbox": False})
    panel = RoomPanel.objects.create(room=room, name=name, user=user, token_digest=panel_token_digest(token), token_prefix=token[:8])
    return panel, token


def room_panel_for_token(token: str | None) -> RoomPanel | None:
    """The live panel ``token`` belongs to (revoked, unknown or malformed: None); notes it was seen."""
    if not token or len(token) > 200:
        return None
    panel = RoomPanel.objects.select_related("room__building", "user").filter(token_digest=panel_token_digest(token)).first()
    if panel is None or panel.revoked:
        return None
    now = timezone.now()
    if panel.last_seen_at is None or now - panel.last_seen_at >= LAST_SEEN_RESOLUTION:
        RoomPanel.objects.filter(pk=panel.pk).update(last_seen_at=now)
        panel.last_seen_at = now
    return panel


def room_panel_revoke(*, panel: RoomPanel) -> None:
    """The device's token stops working at once (its next request is refused)."""
    RoomPanel.objects.filter(pk=panel.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    panel.refresh_from_db(fields=["revoked_at"])
