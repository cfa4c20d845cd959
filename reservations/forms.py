"""Portal forms. They parse what people type (dates and times in the building's
time zone, attendees one per line) into the values the services take; every
rule about reservations stays in the services, whose errors the views put back
on these forms (``add_service_error``)."""

import datetime as dt
import re
from html import escape as _html_escape

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from reservations import parsing, selectors
from reservations.exceptions import EditNotAllowed, ReservationError, SlotTaken
from reservations.recurrence import Recurrence, index_of
from workplace.models import Arrangement, Building, Floor, Room

MAX_ATTENDEES_TYPED = 200


def _escape(value) -> str:
    """``django.utils.html.escape`` (the same characters, the same entities) without its lazy-text
    wrapper and ``SafeString``: for loops over many options, where those were a good part of the cost."""
    return _html_escape(str(value))


def _flatatt(attrs: dict) -> str:
    """``django.forms.utils.flatatt`` (the same order: name="value" pairs sorted, then the true
    booleans sorted; None and False left out; values escaped unless safe) without its
    ``format_html_join`` per call."""
    pairs = sorted((k, v) for k, v in attrs.items() if v is not None and not isinstance(v, bool))
    flags = sorted(k for k, v in attrs.items() if v is True)
    return "".join(f' {_escape(k)}="{v.__html__() if hasattr(v, "__html__") else _escape(v)}"' for k, v in pairs) + "".join(
        f" {_escape(k)}" for k in flags)


def field_html(field: forms.BoundField) -> SafeString:
    """``reservations/_field.html`` for one field, written in Python: the same label, widget,
    help text and errors with the same ids (``aria-describedby`` names them), without a
    template include per field (the finder draws seven). Keep the two alike."""
    errors = field.errors
    parts = ['<div class="field has-error">' if errors else '<div class="field">']
    if getattr(field.field.widget, "input_type", None) == "checkbox":
        parts.append(f'<label class="check">{field} {conditional_escape(field.label)}</label>')
    else:
        parts.append(f'<label for="{conditional_escape(field.id_for_label)}">{conditional_escape(field.label)}</label>{field}')
    if field.help_text:
        parts.append(f'<p class="help" id="{conditional_escape(field.auto_id)}_helptext">{conditional_escape(field.help_text)}</p>')
    parts.extend(f'<p class="field-error" id="{conditional_escape(field.auto_id)}_error">{conditional_escape(e)}</p>' for e in errors)
    parts.append("</div>")
    return mark_safe("\n".join(parts))  # noqa: S308 - every value above is escaped or a rendered widget


class LightSelect(forms.Select):
    """A ``<select>`` written in Python rather than through Django's widget templates (one
    template include per option): the finder's and the day grid's filters list every floor,
    and drawing them was a good part of those pages' time. Same markup as Django's, options
    read straight from the choices (no option dict per choice); grouped choices go through
    Django's templates."""

    def render(self, name, value, attrs=None, renderer=None):
        choices = list(self.choices)
        if any(isinstance(label, list | tuple) for _value, label in choices):
            return super().render(name, value, attrs, renderer)
        built = self.build_attrs(self.attrs, attrs)
        if self.allow_multiple_selected:
            built["multiple"] = True
        values = self.format_value(value)
        options, has_selected = [], False
        for option_value, label in choices:
            option_value = "" if option_value is None else str(option_value)
            # As ChoiceWidget.optgroups: only the first match is selected (unless multiple).
            selected = (not has_selected or self.allow_multiple_selected) and option_value in values
            has_selected |= selected
            options.append(f'<option value="{_escape(option_value)}"{" selected" if selected else ""}>{_escape(label)}</option>')
        return mark_safe(f'<select name="{_escape(name)}"{_flatatt(built)}>{"".join(options)}</select>')  # noqa: S308


class LightInput:
    """An ``<input>`` written in Python (see LightSelect), for the filters' date, time and number boxes."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        shown = "" if widget["value"] is None else f' value="{_escape(widget["value"])}"'
        return mark_safe(f'<input type="{widget["type"]}" name="{_escape(widget["name"])}"{shown}{_flatatt(widget["attrs"])}>')  # noqa: S308


class LightCheckboxSelectMultiple(forms.CheckboxSelectMultiple):
    """Checkboxes whose ``{{ box.tag }}`` (each option's ``<input>``) is written in Python (see
    LightSelect): the same markup as Django's option templates, without three template
    includes per option. ``labelled_boxes`` writes the finder's whole list of them."""

    def _render(self, template_name, context, renderer=None):
        widget = context["widget"]
        if template_name != self.option_template_name or widget.get("wrap_label"):
            return super()._render(template_name, context, renderer)
        return mark_safe(self._input(widget))  # noqa: S308 - escaped in _input

    @staticmethod
    def _input(widget: dict) -> str:
        shown = "" if widget["value"] is None else f' value="{_escape(widget["value"])}"'
        # As django/forms/widgets/attrs.html: in order, True as a bare name, False left out.
        attrs = "".join(f" {_escape(k)}" if v is True else f' {_escape(k)}="{_escape(v)}"'
                        for k, v in widget["attrs"].items() if v is not False)
        return f'<input type="{widget["type"]}" name="{_escape(widget["name"])}"{shown}{attrs}>'

    @classmethod
    def labelled_boxes(cls, field: forms.BoundField, *, empty: str) -> SafeString:
        """``{% for box in field %}<label class="check">{{ box.tag }} {{ box.choice_label }}</label>{% empty %}…``
        in Python, for a field drawn with this widget; ``empty`` (HTML) when it has no choices."""
        boxes = [f'<label class="check">{cls._input(box.data)} {conditional_escape(box.choice_label)}</label>'
                 for box in field.subwidgets]
        return mark_safe("".join(boxes) if boxes else empty)  # noqa: S308 - escaped above


class LightDateInput(LightInput, forms.DateInput):
    pass


class LightTimeInput(LightInput, forms.TimeInput):
    pass


class LightNumberInput(LightInput, forms.NumberInput):
    pass


class DayField(forms.DateField):
    """A day as Django's DateField reads it, then held to the days ``reservations.parsing``
    allows (as the API does): the year 9999 is a form error, not an overflow further on."""

    def to_python(self, value):
        day = super().to_python(value)
        if day is None:
            return None
        try:
            return parsing.day(day)
        except ValidationError as exc:
            raise ValidationError(exc.messages, code="invalid") from None


class ListedChoiceField(forms.ChoiceField):
    """A choice among objects the view already holds (``workplace.catalogue``'s cached lists):
    ``objects`` is [(value, label, object)]; a valid value cleans to its object. What a
    ``ModelChoiceField`` does without its query per form."""

    default_error_messages = {"invalid_choice": "Select a valid choice. That choice is not one of the available choices."}

    def __init__(self, *args, empty_label: str | None = None, **kwargs):
        self.empty_label = empty_label
        super().__init__(*args, **kwargs)
        self.set_objects([])

    def set_objects(self, objects) -> None:
        self._objects = {str(value): obj for value, _label, obj in objects}
        empty = [("", self.empty_label)] if self.empty_label is not None else []
        self.choices = empty + [(str(value), label) for value, label, _obj in objects]

    def to_python(self, value):
        value = super().to_python(value)
        return self._objects.get(value, value) if value else None

    def valid_value(self, value) -> bool:
        return not isinstance(value, str) or value in self._objects


class ListedMultipleChoiceField(forms.MultipleChoiceField):
    """Several of the objects the view holds (see ``ListedChoiceField``): cleans to a list of them."""

    def set_objects(self, objects) -> None:
        self._objects = {str(value): obj for value, _label, obj in objects}
        self.choices = [(str(value), label) for value, label, _obj in objects]

    def clean(self, value):
        return [self._objects[v] for v in super().clean(value)]


class FinderForm(forms.Form):
    """The finder's filters. The choices are the cached lists of ``workplace.catalogue`` (no
    query to draw or check them)."""

    building = ListedChoiceField(required=False, empty_label="Any building", widget=LightSelect)
    floor = ListedChoiceField(required=False, empty_label="Any floor", widget=LightSelect)
    capacity = forms.IntegerField(required=False, min_value=1, max_value=10_000, label="Seats (at least)", widget=LightNumberInput)
    equipment = ListedMultipleChoiceField(required=False, widget=LightCheckboxSelectMultiple)
    arrangement = forms.ChoiceField(required=False, label="Layout", widget=LightSelect)
    date = DayField(required=False, widget=LightDateInput(attrs={"type": "date"}))
    free_from = forms.TimeField(required=False, label="Free from", widget=LightTimeInput(format="%H:%M", attrs={"type": "time"}))
    free_to = forms.TimeField(required=False, label="until", widget=LightTimeInput(format="%H:%M", attrs={"type": "time"}))

    def __init__(self, *args, catalogue, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["building"].set_objects([(b.code, b.name, b) for b in catalogue.buildings])
        self.fields["floor"].set_objects([(f.pk, str(f), f) for f in catalogue.floors])
        self.fields["equipment"].set_objects([(e.slug, e.name, e) for e in catalogue.equipment])
        self.fields["arrangement"].choices = [("", "Any layout")] + [(name, name) for name in catalogue.arrangement_names]

    def drawn(self) -> dict:
        """The filters' fields as the finder draws them (``field_html``, the equipment boxes),
        written in Python rather than through a template include per field."""
        drawn = {name: field_html(self[name]) for name in ("building", "floor", "capacity", "arrangement", "date")}
        drawn["equipment"] = LightCheckboxSelectMultiple.labelled_boxes(self["equipment"], empty='<span class="muted">None listed</span>')
        drawn["more_in_use"] = any(self[name].value() for name in ("floor", "capacity", "arrangement", "equipment"))
        return drawn

    def clean(self):
        data = super().clean()
        building, floor = data.get("building"), data.get("floor")
        if building and floor and floor.building_id != building.pk:
            self.add_error("floor", f"{floor.name} is not in {building.name}.")
        free_from, free_to = data.get("free_from"), data.get("free_to")
        if (free_from is None) != (free_to is None):
            self.add_error("free_to" if free_to is None else "free_from", "Give both times to find rooms free in between.")
        elif free_from is not None and free_to <= free_from:
            self.add_error("free_to", "The end must be after the start.")
        return data


class CalendarForm(forms.Form):
    """The building day grid's choices: a building (its code), one of its floors (any by default)
    and the day. The choices come from lists the view read once (one query each)."""

    building = forms.ChoiceField(widget=LightSelect)
    floor = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, widget=LightSelect)
    date = DayField(required=False, widget=LightDateInput(attrs={"type": "date"}), label="Day")

    def __init__(self, *args, buildings: list[Building], floors: list[Floor], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["building"].choices = [(b.code, b.name) for b in buildings]
        self.fields["floor"].choices = [("", "All floors")] + [(f.pk, f.name) for f in floors]


def parse_attendees(text: str) -> list[str]:
    """Emails separated by commas, semicolons, spaces or new lines; ``Name <email>`` works too."""
    emails = []
    for chunk in re.split(r"[,;\n]+", text or ""):
        chunk = chunk.strip()
        if not chunk:
            continue
        match = re.search(r"<([^>]+)>", chunk)
        emails.extend([match.group(1).strip()] if match else chunk.split())
    return emails


class ReservationForm(forms.Form):
    """Booking and changing a reservation. Times are building-local (``tz``)."""

    FREQUENCIES = [("", "Does not repeat"), ("daily", "Daily"), ("weekly", "Weekly"),
                   ("monthly", "Monthly (same day of the month)"),
                   ("monthly_weekday", "Monthly (on a weekday, e.g. the 2nd Tuesday)")]
    INDEXES = [("first", "First"), ("second", "Second"), ("third", "Third"), ("fourth", "Fourth"), ("last", "Last")]
    # ISO weekdays, as the API's recurrence.weekdays.
    WEEKDAYS = [(1, "Monday"), (2, "Tuesday"), (3, "Wednesday"), (4, "Thursday"), (5, "Friday"), (6, "Saturday"), (7, "Sunday")]

    subject = forms.CharField(max_length=255)
    date = DayField(widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(label="From", widget=forms.TimeInput(format="%H:%M", attrs={"type": "time", "step": 300}))
    end_time = forms.TimeField(label="To", widget=forms.TimeInput(format="%H:%M", attrs={"type": "time", "step": 300}))
    arrangement = forms.ModelChoiceField(queryset=None, required=False, empty_label=None, label="Layout")
    attendees = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "email"}),
        help_text="Email addresses, one per line or separated by commas.",
    )
    body = forms.CharField(required=False, label="Description", max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))
    requested_for = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("first_name", "username"),
        required=False, label="This reservation is for", empty_label="Myself",
    )
    group = forms.BooleanField(required=False, label="Group reservation")
    online_meeting = forms.BooleanField(required=False, label="Teams meeting",
                                        help_text="Outlook adds a Teams join link; it shows here and in the invitation.")
    frequency = forms.ChoiceField(choices=FREQUENCIES, required=False, label="Repeat")
    interval = forms.IntegerField(min_value=1, max_value=99, required=False, initial=1, label="Every",
                                  help_text="days, weeks or months")
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple, label="On",
        help_text="Weekly series: the days of the week it meets (none ticked: the first day's weekday).",
    )
    month_index = forms.ChoiceField(choices=[("", "As the first day")] + INDEXES, required=False, label="Which",
                                    help_text="Monthly on a weekday: its position in the month (default: the first day's).")
    month_weekday = forms.TypedChoiceField(choices=[("", "As the first day")] + WEEKDAYS, coerce=int, empty_value=None,
                                           required=False, label="Weekday")
    ends = forms.ChoiceField(choices=[("until", "On date"), ("count", "After")], required=False, initial="until",
                             widget=forms.RadioSelect, label="Ends")
    until = DayField(required=False, label="End date", widget=forms.DateInput(attrs={"type": "date"}))
    count = forms.IntegerField(min_value=1, max_value=500, required=False, label="Occurrences")
    scope = forms.ChoiceField(choices=[("occurrence", "Only this occurrence"), ("series", "This and all later occurrences of the series")],
                              required=False, initial="occurrence", widget=forms.RadioSelect, label="Change")

    # Which of the service's error keys belongs to which field of this form.
    ERROR_FIELDS = {
        "subject": "subject", "body": "body", "start": "start_time", "end": "end_time", "arrangement": "arrangement",
        "attendees": "attendees", "requested_for": "requested_for", "kind": "group", "online_meeting": "online_meeting",
        "recurrence.frequency": "frequency", "recurrence.interval": "interval", "recurrence.until": "until",
        "recurrence.count": "count", "recurrence.weekdays": "weekdays", "recurrence.index": "month_index", "recurrence": "frequency", "scope": "scope", "room": "room",
    }

    def __init__(self, *args, room, tz, editing=None, caps=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.room, self.tz, self.editing = room, tz, editing
        # Fields the page doesn't draw (the mode or the room doesn't offer them): their errors go on top.
        caps = caps or {}
        self.undrawn = set()
        if not caps.get("can_book_on_behalf", True):
            self.undrawn.add("requested_for")
        if not (room.group_reservations_enabled and caps.get("can_group", True)):
            self.undrawn.add("group")
        self.fields["arrangement"].queryset = room.arrangements.all()
        if "requested_for" in self.fields:
            self._people_for_on_behalf()
        self.fields["arrangement"].label_from_instance = lambda a: f"{a.name} ({a.seats} seats)"
        if editing is not None:
            # Changing: the room can change too (rooms of the same building: times stay in its zone).
            # The layout list shows this room's layouts; moving to another room takes its default one.
            self.fields["room"] = forms.ModelChoiceField(
                queryset=Room.objects.filter(building_id=room.building_id, reservable=True).order_by("name"),
                empty_label=None, label="Room", initial=room, required=False,  # not sent: the room stays
                help_text=caps.get("room_change_note", ""),
            )
            self.fields["room"].label_from_instance = lambda r: f"{r.name} ({r.capacity} seats{', Outlook room' if r.is_synced else ''})"
            self.fields["arrangement"].queryset = Arrangement.objects.filter(room__building_id=room.building_id)
            self.fields["arrangement"].widget.choices = [
                (a.pk, f"{a.name} ({a.seats} seats)") for a in room.arrangements.all()
            ]
            self.fields["arrangement"].help_text = "Moving to another room uses its default layout."
            self.order_fields(["subject", "date", "start_time", "end_time", "room"])
        for name in ("date", "start_time", "end_time"):
            self.fields[name].help_text = f"{room.building.name} time ({room.building.timezone})" if name == "date" else ""
        if editing is not None:
            for name in ("requested_for", "group", "online_meeting", "frequency", "interval", "weekdays", "month_index", "month_weekday",
                         "ends", "until", "count"):
                del self.fields[name]
            if editing.series_id is None:
                del self.fields["scope"]
        else:
            del self.fields["scope"]

    def clean_subject(self):
        return parsing.subject(self.cleaned_data["subject"])

    def _people_for_on_behalf(self) -> None:
        """"This reservation is for": people by name and email, without service accounts (each
        provider's delegated user and organizer account) or admin-only accounts (superusers)."""
        field = self.fields["requested_for"]
        field.queryset = selectors.people_bookable()
        field.label_from_instance = lambda u: f"{u.get_full_name() or u.get_username()} ({u.email})" if u.email else (u.get_full_name() or u.get_username())

    def clean_attendees(self):
        emails = parse_attendees(self.cleaned_data.get("attendees", ""))
        if len(emails) > MAX_ATTENDEES_TYPED:
            raise ValidationError(f"At most {MAX_ATTENDEES_TYPED} attendees.")
        bad = []
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                bad.append(email)
        if bad:
            raise ValidationError(f"Not an email address: {', '.join(bad[:5])}.")
        return [email.lower() for email in emails]

    def clean(self):
        data = super().clean()
        day, start_time, end_time = data.get("date"), data.get("start_time"), data.get("end_time")
        if day and start_time and end_time:
            start = dt.datetime.combine(day, start_time, tzinfo=self.tz)
            # An end at or before the start (e.g. 23:00-00:30) ends the next day only for 00:00.
            end_day = day + dt.timedelta(days=1) if end_time == dt.time(0, 0) else day
            data["start"] = start
            data["end"] = dt.datetime.combine(end_day, end_time, tzinfo=self.tz)
        if self.editing is not None:
            target, arrangement = data.get("room") or self.room, data.get("arrangement")
            if arrangement is not None and arrangement.room_id != target.pk:
                if target.pk != self.room.pk:
                    data["arrangement"] = None  # the new room's default layout
                else:
                    self.add_error("arrangement", f"Choose one of {self.room.name}'s layouts.")
        if self.editing is None and data.get("frequency"):
            ends = data.get("ends") or "until"
            if ends == "until" and not data.get("until"):
                self.add_error("until", "Give the date the series ends on.")
            if ends == "count" and not data.get("count"):
                self.add_error("count", "Give the number of occurrences.")
            if data.get("weekdays") and data["frequency"] != "weekly":
                data["weekdays"] = []  # ticked, then the frequency changed: days apply to weekly series only
        return data

    def recurrence(self) -> Recurrence | None:
        data = self.cleaned_data
        if self.editing is not None or not data.get("frequency"):
            return None
        by_count = data.get("ends") == "count"
        ends = {"until": None if by_count else data.get("until"), "count": data.get("count") if by_count else None}
        if data["frequency"] == "monthly_weekday":
            first_day = data["date"]
            return Recurrence(
                frequency="monthly", interval=data.get("interval") or 1, index=data.get("month_index") or index_of(first_day),
                weekdays=(data.get("month_weekday") or first_day.isoweekday(),), **ends,
            )
        return Recurrence(
            frequency=data["frequency"], interval=data.get("interval") or 1,
            weekdays=tuple(sorted(set(data.get("weekdays") or ()))), **ends,
        )

    def add_service_error(self, exc: ReservationError) -> None:
        """Put a service's refusal on the form: on the fields it names, else at the top."""
        placed = False
        if not isinstance(exc, SlotTaken | EditNotAllowed):
            for key, messages in (exc.extra or {}).items():
                if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
                    continue
                name = self.ERROR_FIELDS.get(key) or self.ERROR_FIELDS.get(key.split("[")[0])
                if name in self.fields and name not in self.undrawn:
                    for message in messages:
                        self.add_error(name, message)
                    placed = True
        if not placed or len(exc.extra or {}) > 1:
            self.add_error(None, exc.message)


class CancelForm(forms.Form):
    cancel_meeting = forms.BooleanField(required=False, initial=True, label="Also cancel the meeting on people's calendars")
    scope = forms.ChoiceField(
        choices=[("occurrence", "Only this occurrence"), ("series", "Every remaining occurrence of the series")],
        required=False, initial="occurrence", widget=forms.RadioSelect, label="Cancel",
    )
    reason = forms.CharField(required=False, max_length=500, label="Reason (optional, sent with the cancellation)")
