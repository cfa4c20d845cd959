"""The finder's HTML written in Python (issue 14's page speed: reservations/forms.py's
``field_html`` and light widgets, views/finder.py's rows): user data is escaped everywhere it
shows, and the Python field blocks are the markup ``reservations/_field.html`` draws."""

import re
from html.parser import HTMLParser

import pytest
from django import forms
from django.template.loader import render_to_string

from reservations.forms import FinderForm, LightSelect, ReservationForm, field_html
from tests.factories import BuildingFactory, EquipmentFactory, FloorFactory, RoomFactory, days_ahead
from workplace import catalogue

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('x')</script>"


def _squeezed(html: str) -> str:
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", html)).strip()


def _parsed(html: str) -> list:
    """The tags (attributes in any order: the same element), texts and end tags of ``html``."""

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.items = []

        def handle_starttag(self, tag, attrs):
            self.items.append((tag, sorted(attrs, key=lambda a: (a[0], a[1] or ""))))

        def handle_endtag(self, tag):
            self.items.append(("/", tag))

        def handle_data(self, data):
            if data.strip():
                self.items.append(("text", " ".join(data.split())))

    parser = Parser()
    parser.feed(html)
    return parser.items


def test_names_with_markup_are_escaped_on_the_finder(client, alice):
    building = BuildingFactory(name=f"B {SCRIPT}", code="evil")
    floor = FloorFactory(building=building, name=f'F "{SCRIPT}', level=1)
    EquipmentFactory(slug="evil-kit", name=f"Kit {SCRIPT}")
    room = RoomFactory(building=building, floor=floor, name=f"Room {SCRIPT} & co", arrangements=[f"Layout {SCRIPT}"])
    room.equipment.add(*catalogue._read().equipment)
    client.force_login(alice)
    day = days_ahead(1, 9).date().isoformat()
    for params in ({"date": day}, {"date": day, "building": "evil", "equipment": "evil-kit", "arrangement": f"Layout {SCRIPT}",
                                   "floor": str(floor.pk), "capacity": "1"}):
        page = client.get("/", params).content.decode()
        assert "<script>" not in page, params
        assert "1 room" in page
        escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
        # The row: its name (heading and both links' labels), building, floor, equipment and layouts.
        assert f'<h3 class="room-name">Room {escaped} &amp; co</h3>' in page
        assert f'aria-label="Book Room {escaped} &amp; co"' in page
        assert f'aria-label="Room {escaped} &amp; co&#x27;s week"' in page
        assert f"B {escaped} · F &quot;{escaped} · 8 seats" in page
        assert f"Equipment:</span> Kit {escaped}</span>" in page
        assert f"Layouts:</span> Default, Layout {escaped}</span>" in page
        # The filters: options and checkbox labels.
        assert f">B {escaped}</option>" in page
        assert f">B {escaped} / F &quot;{escaped}</option>" in page
        assert f'value="Layout {escaped}"' in page
        assert 'value="evil-kit"' in page and f"> Kit {escaped}</label>" in page
    # The chosen values come back selected and checked.
    assert '<option value="evil" selected>' in page
    assert f'<option value="{floor.pk}" selected>' in page
    assert f'<option value="Layout {escaped}" selected>' in page
    assert 'value="evil-kit" id="id_equipment_0" checked>' in page


def test_typed_markup_in_the_filters_comes_back_escaped(client, alice):
    client.force_login(alice)
    page = client.get("/", {"capacity": SCRIPT, "date": SCRIPT, "floor": SCRIPT, "arrangement": SCRIPT,
                            "free_from": SCRIPT, "free_to": "10:00"}).content.decode()
    assert "<script>" not in page
    assert "Check the filters" in page
    assert 'aria-invalid="true"' in page and 'aria-describedby="id_capacity_error"' in page


def _through_template(bound) -> str:
    return render_to_string("reservations/_field.html", {"field": bound})


def test_field_html_draws_what_the_field_template_draws(hq):
    room = RoomFactory(building=hq, name="Atlas", arrangements=["Boardroom"])
    listed = catalogue._read()
    finder = FinderForm({"building": "hq", "floor": "999", "capacity": "0", "date": "2026-02-30"}, catalogue=listed)
    assert not finder.is_valid()
    booking = ReservationForm({"subject": "", "date": "x", "group": "on"}, room=room, tz=hq.tzinfo)
    assert not booking.is_valid()
    unbound = ReservationForm(room=room, tz=hq.tzinfo)
    fields = [finder[name] for name in ("building", "floor", "capacity", "arrangement", "date")]
    fields += [booking[name] for name in ("subject", "date", "group", "online_meeting", "attendees", "interval", "arrangement")]
    fields += [unbound[name] for name in ("subject", "group", "frequency", "attendees")]
    for bound in fields:
        assert _squeezed(field_html(bound)) == _squeezed(_through_template(bound)), bound.name
        assert _parsed(field_html(bound)) == _parsed(_through_template(bound)), bound.name


def test_the_light_select_draws_djangos_select():
    choices = [("", "Any"), ("a&b", "A & B"), (3, "Three <3>"), (None, "None")]

    class Form(forms.Form):
        light = forms.ChoiceField(choices=choices, required=False, widget=LightSelect)
        plain = forms.ChoiceField(choices=choices, required=False)

    for data in ({}, {"light": "a&b", "plain": "a&b"}, {"light": "3", "plain": "3"}, {"light": "", "plain": ""}):
        form = Form(data or None)
        light = _parsed(str(form["light"]).replace("light", "NAME"))
        plain = _parsed(str(form["plain"]).replace("plain", "NAME"))
        assert light == plain, data


def test_the_light_inputs_draw_djangos_inputs():
    from reservations.forms import LightDateInput, LightNumberInput, LightTimeInput

    class Form(forms.Form):
        light_n = forms.IntegerField(min_value=1, max_value=9, widget=LightNumberInput(attrs={"data-x": 'a"b', "autofocus": True}))
        plain_n = forms.IntegerField(min_value=1, max_value=9, widget=forms.NumberInput(attrs={"data-x": 'a"b', "autofocus": True}))
        light_d = forms.DateField(required=False, disabled=True, widget=LightDateInput(attrs={"type": "date"}))
        plain_d = forms.DateField(required=False, disabled=True, widget=forms.DateInput(attrs={"type": "date"}))
        light_t = forms.TimeField(required=False, widget=LightTimeInput(format="%H:%M", attrs={"type": "time", "hidden": False}))
        plain_t = forms.TimeField(required=False, widget=forms.TimeInput(format="%H:%M", attrs={"type": "time", "hidden": False}))

    for data in (None, {"light_n": "<0>", "plain_n": "<0>", "light_t": "10:00", "plain_t": "10:00"}):
        form = Form(data)
        for kind in ("n", "d", "t"):
            light = _parsed(str(form[f"light_{kind}"]).replace("light_", "NAME_"))
            plain = _parsed(str(form[f"plain_{kind}"]).replace("plain_", "NAME_"))
            assert light == plain, (data, kind)
