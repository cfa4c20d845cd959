"""The room's and the person's change forms at scale (issue 17): the room's building, floor,
approvers group and approvers, and a person's groups, are autocomplete boxes; the approvers box
offers active people as the admin types."""


import pytest
from django.contrib.auth.models import Group

from tests.admin_html import options, select
from tests.factories import BuildingFactory, FloorFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd(db):
    """30 more people, buildings with floors, and approvers groups."""
    for i in range(30):
        UserFactory(username=f"person{i:03}")
        FloorFactory(building=BuildingFactory(name=f"Site {i:03}", code=f"s{i:03}"), name=f"Level {i:03}")
        Group.objects.create(name=f"Approvers of Room {i:03}")


def test_a_rooms_change_form_renders_no_option_per_person_floor_or_group(client, admin, alice, atlas, crowd):
    approvers = Group.objects.create(name="Approvers of Atlas")
    alice.groups.add(approvers)
    atlas.needs_approval, atlas.approvers = True, approvers
    atlas.save()
    client.force_login(admin)
    html = client.get(f"/admin/workplace/room/{atlas.pk}/change/").content.decode()
    assert "person0" not in html and "Level 0" not in html and "Approvers of Room" not in html and "Site 0" not in html
    assert options(html, "approver_users") == ["alice"]
    assert 'data-ajax--url="/admin/workplace/room/approver-candidates/"' in select(html, "approver_users")
    assert options(html, "building") == ["HQ"] and options(html, "floor") == ["", "HQ / 1st floor"]
    assert options(html, "approvers") == ["", "Approvers of Atlas"]
    for name in ("approver_users", "building", "floor", "approvers"):
        assert "admin-autocomplete" in select(html, name), name


def test_the_approvers_box_offers_active_people_as_the_admin_types(client, admin, alice, crowd):
    UserFactory(username="person999", is_active=False)
    client.force_login(admin)
    found = client.get("/admin/workplace/room/approver-candidates/", {"term": "person00"}).json()
    assert [r["text"] for r in found["results"]] == [f"person00{i}" for i in range(10)]
    everyone = client.get("/admin/workplace/room/approver-candidates/", {"term": "person"}).json()
    assert len(everyone["results"]) == 20 and everyone["pagination"]["more"] is True  # a page at a time
    assert "person999" not in {r["text"] for r in everyone["results"]}
    assert [r["text"] for r in client.get("/admin/workplace/room/approver-candidates/", {"term": "person999"}).json()["results"]] == []
    assert found["results"][0]["id"] == str(UserFactory(username="person000").pk)


def test_the_approvers_box_is_for_staff_only(client, alice):
    client.force_login(alice)
    response = client.get("/admin/workplace/room/approver-candidates/", {"term": "a"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_persons_change_form_renders_no_option_per_group(client, admin, alice, crowd):
    alice.groups.add(Group.objects.get(name="Approvers of Room 007"))
    client.force_login(admin)
    html = client.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert options(html, "groups") == ["Approvers of Room 007"] and "admin-autocomplete" in select(html, "groups")
    assert "Approvers of Room 008" not in html


def test_a_floors_building_is_an_autocomplete(client, admin, atlas, crowd):
    floor = atlas.floor
    client.force_login(admin)
    html = client.get(f"/admin/workplace/floor/{floor.pk}/change/").content.decode()
    assert options(html, "building") == ["HQ"] and "Site 0" not in html
