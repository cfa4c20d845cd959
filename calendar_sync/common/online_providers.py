"""Whether the calendar that will organize a meeting allows Teams (issue 14, item 9).

Graph's calendar resource names the online meeting providers its meetings may use,
``allowedOnlineMeetingProviders``, and ``defaultOnlineMeetingProvider``
(https://learn.microsoft.com/en-us/graph/api/resources/calendar?view=graph-rest-1.0;
"Create or set an event as an online meeting":
https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings — "look for the
allowedOnlineMeetingProviders and defaultOnlineMeetingProvider properties to verify if an
Outlook calendar supports any online meeting providers"). The mailbox and credential are the
ones the push will use (the SPEC §3 plan of a create); the answer is cached per provider and
mailbox for ``CACHE_SECONDS``. When Graph can't be asked the booking isn't refused: the push
then finds out, as before."""

from __future__ import annotations

import logging

from django.core.cache import cache

from exchange_auth import properties
from exchange_auth.graph import GraphError, users_path
from exchange_auth.modes import PlanError, plan_sync

from .plan import PermanentSyncError, client_for_plan, has_mailbox, user_email
from .tenancy import provider_for_room

logger = logging.getLogger("calendar_sync.online_providers")

TEAMS = "teamsForBusiness"
CACHE_SECONDS = 600
CALENDAR_SELECT = "allowedOnlineMeetingProviders,defaultOnlineMeetingProvider"


def calendar_providers(provider, plan, actor) -> dict | None:
    """{"allowed": [...], "default": "..."} of the plan's mailbox calendar, cached; None when unknown."""
    mailbox = (plan.mailbox or "").lower()
    if not mailbox:
        return None
    key = f"calendar_sync:meeting_providers:{provider.pk}:{mailbox}"
    hit = cache.get(key)
    if hit is not None:
        return hit
    try:
        body = client_for_plan(plan, provider, actor).get(users_path(mailbox, "calendar"), params={"$select": CALENDAR_SELECT})
    except (GraphError, PermanentSyncError) as exc:
        logger.info("Online meeting providers of %s unknown: %s", mailbox, exc)
        return None
    found = {"allowed": list((body or {}).get("allowedOnlineMeetingProviders") or []),
             "default": (body or {}).get("defaultOnlineMeetingProvider") or "unknown"}
    cache.set(key, found, CACHE_SECONDS)
    return found


def teams_refusal(*, room, actor, requested_for, kind: str, source: str, subsource: str) -> str:
    """"" when a Teams meeting may be asked for in ``room``, else the sentence saying why not."""
    if not getattr(room, "is_synced", False):
        return ""
    provider = provider_for_room(room)
    if provider is None:
        return ""
    try:
        plan = plan_sync(
            mode=properties.sync_mode(), source=source, subsource=subsource, kind=kind,
            acting_user=user_email(actor), requested_for=user_email(requested_for),
            requested_for_has_mailbox=has_mailbox(requested_for), room_mailbox=(room.mailbox or "").lower(),
            accounts=provider.accounts, blocker_user=properties.get(properties.BLOCKER_USER) or "",
        )
    except PlanError:
        return ""
    found = calendar_providers(provider, plan, actor)
    if found is None or TEAMS in found["allowed"]:
        return ""
    return (f"Teams meetings can't be added here: the Outlook calendar that organizes this meeting ({plan.mailbox}) "
            "doesn't allow Teams. Book without a Teams meeting, or ask your IT team to allow Teams for it.")
