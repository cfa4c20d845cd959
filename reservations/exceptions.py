"""Errors the reservation services raise. The API maps each to its HTTP status
(``status_code``) and the portal shows ``message`` as a form error. Nothing is
changed when one is raised: services validate before they write, and the
durable transaction rolls back anything else."""


class ReservationError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, extra: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if code:
            self.code = code


class InvalidReservation(ReservationError):
    """Bad input: end before start, too long, too many attendees, unknown room..."""

    status_code = 400


class SlotTaken(ReservationError):
    """The room is already booked for (part of) the requested time."""

    status_code = 409
    code = "slot_taken"


class RuleViolation(ReservationError):
    """A sync-mode restriction of SPEC §3 refuses the action. ``rule`` names it."""

    status_code = 403

    def __init__(self, rule: str, message: str, *, extra: dict | None = None, status_code: int | None = None):
        super().__init__(message, extra=extra, code=rule)
        self.rule = rule
        if status_code:
            self.status_code = status_code


class EditNotAllowed(RuleViolation):
    """The meeting was created in Outlook: it can't be edited from the product.

    ``differences`` lists each field that would change: {field: {"current": .., "requested": ..}}."""

    def __init__(self, message: str, *, differences: dict):
        super().__init__("outlook_origin_edit", message, extra={"differences": differences}, status_code=409)
        self.differences = differences


class NotPermitted(ReservationError):
    """The actor may not manage this reservation (it is neither theirs nor are they staff)."""

    status_code = 403
    code = "not_permitted"


class NotActive(ReservationError):
    """The reservation is cancelled, rejected or over: it can't be changed any more."""

    status_code = 409
    code = "not_active"


class CheckInRefused(ReservationError):
    """A check-in that can't be made: outside its window (``outside_window``), by someone who
    may not (``not_permitted``, 403), or of a reservation already released (``released``) or no
    longer active (``not_active``). ``extra`` says when the window opens and closes."""

    status_code = 409
    code = "checkin_refused"

    def __init__(self, message: str, *, code: str, extra: dict | None = None, status_code: int | None = None):
        super().__init__(message, extra=extra, code=code)
        if status_code:
            self.status_code = status_code
