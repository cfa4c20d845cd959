"""The admin's list filters stay short at scale (workplace.admin_filters, issue 17): a filter over
rooms, buildings, groups or mailboxes lists at most CHOICES_LIMIT of them, the one filtered by
always among them, and a box narrows the list without filtering the rows."""

import re

import pytest

from calendar_sync.models import RoomEvent
from tests.factories import BuildingFactory, ReservationFactory, RoomFactory, days_ahead
from workplace.admin_filters import CHOICES_LIMIT

pytestmark = pytest.mark.django_db


def filter_links(html: str, title: str) -> list[str]:
    """The texts of the links in the sidebar filter titled ``title`` ("All" included)."""
    block = re.search(rf'<details data-filter-title="{re.escape(title)}".*?</details>', html, re.S)
    assert block, f"no filter {title!r}"
    return [text.strip() for text in re.findall(r"<a [^>]*>(.*?)</a>", block.group(0), re.S)]


@pytest.fixture
def rooms_150(db):
    """150 rooms in one building, each with a reservation."""
    building = BuildingFactory(name="Tower", code="tower")
    rooms = [RoomFactory(building=building, name=f"Room {i:03}") for i in range(150)]
    for room in rooms:
        ReservationFactory(room=room, start=days_ahead(1, 9))
    return rooms


def test_a_room_filter_over_150_rooms_lists_the_first_100_and_a_box_for_the_others(client, admin, rooms_150):
    client.force_login(admin)
    html = client.get("/admin/reservations/reservation/").content.decode()
    links = filter_links(html, "room")
    assert len(links) == 1 + CHOICES_LIMIT == 101  # "All" and the first 100 by building and name
    assert links[1] == "Room 000 (Tower)" and links[-1] == "Room 099 (Tower)"
    assert 'name="room__narrow"' in html and "Only the first 100 are listed" in html
    # With the facets' counts too (one aggregate over the listed rooms).
    faceted = client.get("/admin/reservations/reservation/", {"_facets": "True"}).content.decode()
    assert len(links := filter_links(faceted, "room")) == 101 and links[1] == "Room 000 (Tower) (1)"


def test_the_room_filtered_by_stays_listed_and_selected_beyond_the_first_100(client, admin, rooms_150):
    client.force_login(admin)
    last = rooms_150[-1]
    response = client.get("/admin/reservations/reservation/", {"room__id__exact": last.pk})
    html = response.content.decode()
    assert response.context["cl"].result_count == 1
    assert "Room 149 (Tower)" in filter_links(html, "room")
    assert re.search(r'<li class="selected">\s*<a href="[^"]*">Room 149 \(Tower\)</a>', html)


def test_the_box_narrows_the_choices_by_the_room_admins_search_and_not_the_rows(client, admin, rooms_150):
    client.force_login(admin)
    response = client.get("/admin/reservations/reservation/", {"room__narrow": "Room 12"})
    html = response.content.decode()
    assert response.context["cl"].result_count == 150
    # The rooms' own search: every word, anywhere in the name.
    assert filter_links(html, "room") == ["All", "Room 012 (Tower)", "Room 112 (Tower)", *(f"Room 12{i} (Tower)" for i in range(10))]
    # The box keeps its text, and the choices' links keep the narrowing.
    assert 'value="Room 12"' in html and "room__narrow=Room+12" in html
    assert "Only the first" not in html


def test_the_box_keeps_the_pages_other_filters(client, admin, rooms_150):
    client.force_login(admin)
    html = client.get("/admin/reservations/reservation/", {"state__exact": "confirmed", "room__narrow": "Room 1"}).content.decode()
    form = re.search(r'<form method="get" class="capped-filter".*?</form>', html, re.S).group(0)
    assert '<input type="hidden" name="state__exact" value="confirmed">' in form
    assert 'name="room__narrow"' in form and form.count('name="room__narrow"') == 1


def test_a_short_list_has_no_box(client, admin, hq, atlas):
    ReservationFactory(room=atlas)
    RoomFactory(building=hq, name="Dojo")
    client.force_login(admin)
    html = client.get("/admin/reservations/reservation/").content.decode()
    assert filter_links(html, "room") == ["All", "Atlas (HQ)", "Dojo (HQ)"]
    assert "room__narrow" not in html


def test_the_building_filters_of_rooms_and_floors_are_capped_too(client, admin):
    for i in range(120):
        RoomFactory(building=BuildingFactory(name=f"Site {i:03}", code=f"s{i:03}"))
    client.force_login(admin)
    assert len(filter_links(client.get("/admin/workplace/room/").content.decode(), "building")) == 101
    assert len(filter_links(client.get("/admin/workplace/floor/").content.decode(), "building")) == 101


def test_a_mailbox_filter_over_150_mailboxes_lists_100_and_narrows_by_start(client, admin):
    RoomEvent.objects.bulk_create([RoomEvent(mailbox=f"room{i:03}@contoso.example", event_id=f"AAMk{i}") for i in range(150)])
    client.force_login(admin)
    links = filter_links(client.get("/admin/calendar_sync/roomevent/").content.decode(), "mailbox")
    assert len(links) == 101 and links[1] == "room000@contoso.example" and links[-1] == "room099@contoso.example"
    response = client.get("/admin/calendar_sync/roomevent/", {"mailbox__narrow": "room14"})
    assert filter_links(response.content.decode(), "mailbox") == ["All", *(f"room14{i}@contoso.example" for i in range(10))]
    assert response.context["cl"].result_count == 150
    selected = client.get("/admin/calendar_sync/roomevent/", {"mailbox": "room149@contoso.example"})
    assert "room149@contoso.example" in filter_links(selected.content.decode(), "mailbox")
    assert selected.context["cl"].result_count == 1


def test_a_groups_filter_over_150_approvers_groups_is_capped(client, admin):
    from django.contrib.auth.models import Group

    Group.objects.bulk_create([Group(name=f"Approvers of Room {i:03}") for i in range(150)])
    client.force_login(admin)
    links = filter_links(client.get("/admin/auth/user/").content.decode(), "groups")
    assert len(links) == 1 + CHOICES_LIMIT + 1 and links[-1] == "-"  # "All", 100 groups, and the people in none


def test_a_room_filtered_by_that_is_not_an_id_is_a_bad_filter_not_an_error(client, admin, rooms_150):
    client.force_login(admin)
    response = client.get("/admin/reservations/reservation/", {"room__id__exact": "x"})
    assert response.status_code == 302 and "e=1" in response["Location"]
