"""What both wings of calendar sync use: the plan of an event, the room's answers, the
Graph clients per credential, calendar-level calls, what a push or a pull does to a reservation."""
