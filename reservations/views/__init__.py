"""The employee portal: find a room, book, my reservations, change, cancel — a module per page.

Views stay thin: a form parses input, one service call writes, a ``ReservationError`` from
the service goes back on the form as a message (never a server error page). What the sync
mode allows is asked of ``rules.ui_capabilities`` before the page is drawn, so restricted
actions are hidden or disabled with their reason. ``reservations.urls`` names these."""

from .approvals import approvals, decide
from .booking import book, change
from .building_week import building_week
from .calendar import building_day
from .cancel import cancel, cancel_selected
from .checkin import check_in, room_check_in, series_confirm
from .finder import finder, room_week
from .mine import my_feed, my_reservations, outlook_settings, reservation_detail, reservation_status
from .panel import panel, panel_action, panel_state_view
from .utilization import utilization_page

__all__ = [
    "approvals", "book", "building_day", "building_week", "cancel", "cancel_selected", "change", "check_in", "decide", "finder", "my_feed",
    "my_reservations", "outlook_settings", "panel", "panel_action", "panel_state_view", "reservation_detail", "reservation_status",
    "room_check_in", "room_week", "series_confirm", "utilization_page",
]
