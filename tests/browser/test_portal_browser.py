"""The portal in headless Chromium against the running product: book and watch the room
confirm, connect Outlook in Personal mode through the emulator's sign-in page and book,
a refused on-behalf booking, each cancel dialog, and screenshots of the main pages."""

import re

import pytest
from django.utils import timezone

from exchange_auth import crypto
from exchange_auth.models import PersonalToken
from reservations import services
from reservations.models import Origin, Reservation, State, SyncEvent
from reservations.recurrence import Recurrence
from tests.browser.conftest import screenshot, sign_in
from tests.factories import FloorFactory, ReservationFactory, RoomFactory, days_ahead
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALICE = "alice@contoso.example"


@pytest.fixture
def borealis(hq):
    floor = FloorFactory(building=hq, name="2nd floor", level=2)
    return RoomFactory(building=hq, floor=floor, name="Borealis", capacity=4, synced=True)


def fill_booking(pg, *, subject: str, day: int, start: str, end: str) -> None:
    pg.get_by_label("Subject").fill(subject)
    pg.get_by_label("Date", exact=True).fill(days_ahead(day, 9).date().isoformat())
    pg.get_by_label("From").fill(start)
    pg.get_by_label("To", exact=True).fill(end)


def row_of(pg, reservation_id: int):
    return pg.locator(f"#rsv-{reservation_id}")


def reload_until(pg, locator_text: tuple[str, str], timeout: float = 45):
    selector, text = locator_text

    def seen():
        pg.reload()
        return text in pg.locator(selector).inner_text()

    wait_for(seen, timeout=timeout, interval=0.5, message=f"{text!r} in {selector}")


def test_book_a_room_and_watch_the_room_confirm_it(page, provider, mode, emulator, alice, atlas, borealis, worker):
    mode("Normal")
    # The room's calendar answers slowly, so the employee first sees the booking waiting for it.
    emulator.inject_fault(method="POST", path=r"/users/[^/]+/events$", count=1, action="delay", seconds=3.0)
    sign_in(page)
    page.get_by_label("Building").select_option("hq")
    page.get_by_label("Date").fill(days_ahead(1, 9).date().isoformat())
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Book Atlas").click()
    assert "Europe/Berlin" in page.locator(".page-head").inner_text()
    fill_booking(page, subject="Roadmap review", day=1, start="10:00", end="11:00")
    page.get_by_label("Attendees", exact=True).fill("bob@contoso.example")
    page.get_by_role("button", name="Book Atlas").click()
    page.wait_for_url("**/my/")
    assert "Awaiting confirmation from the room" in page.locator(".messages").inner_text()
    reservation = Reservation.objects.get(subject="Roadmap review")
    assert "Awaiting confirmation" in row_of(page, reservation.pk).inner_text()
    assert reservation.start == days_ahead(1, 10)

    reload_until(page, (f"#rsv-{reservation.pk}", "Confirmed"))
    text = row_of(page, reservation.pk).inner_text()
    assert "In sync" in text
    reservation.refresh_from_db()
    assert reservation.state == State.CONFIRMED and reservation.event_id


def test_connect_outlook_in_personal_mode_then_book(page, provider, mode, emulator, alice, atlas, worker):
    mode("Personal")
    sign_in(page)
    assert page.locator("#outlook-badge").get_attribute("data-state") == "not_connected"
    page.goto(f"/rooms/{atlas.pk}/book/?date={days_ahead(2, 9).date().isoformat()}&start=14:00&end=15:00")
    assert page.locator("#book-submit").is_disabled()
    assert "Connect your Outlook account first" in page.locator("#outlook-required").inner_text()
    assert page.locator("select[name=requested_for]").count() == 0  # Personal mode: only for yourself

    page.locator("#outlook-required").get_by_role("button", name="Connect Outlook").click()
    page.wait_for_url(re.compile(r"https://127\.0\.0\.1:\d+/.*/oauth2/v2\.0/authorize"))
    assert page.locator(f"input[name=login][value='{ALICE}']").is_checked()  # login hint
    page.locator("#passwd").fill("demo-password")
    page.locator("#idSIButton9").click()
    page.wait_for_url(f"**/rooms/{atlas.pk}/book/**")
    assert "Outlook is connected as alice@contoso.example" in page.locator(".messages").inner_text()
    assert page.locator("#outlook-badge").get_attribute("data-state") == "connected"
    assert page.locator("#book-submit").is_enabled()

    page.get_by_label("Subject").fill("1:1 with Bob")
    page.locator("#book-submit").click()
    page.wait_for_url("**/my/")
    reservation = Reservation.objects.get(subject="1:1 with Bob")
    reload_until(page, (f"#rsv-{reservation.pk}", "Confirmed"))
    reservation.refresh_from_db()
    assert (reservation.sync_mailbox, reservation.mailbox.lower()) == ("user", ALICE)  # in her own calendar

    # A revoked connection asks for a reconnect; reconnecting goes through the sign-in page again.
    PersonalToken.objects.filter(user=alice).update(needs_reconnect=True)
    page.goto("/")
    page.locator("#outlook-badge").get_by_role("button", name="Reconnect Outlook").click()
    page.locator("#passwd").fill("demo-password")
    page.locator("#idSIButton9").click()
    page.wait_for_url(f"{page.url.split('/_')[0]}**")
    page.goto("/outlook/")
    assert page.locator("#outlook-status").get_attribute("data-state") == "connected"

    page.get_by_role("button", name="Disconnect Outlook").click()
    assert page.locator("#outlook-status").get_attribute("data-state") == "not_connected"
    assert page.locator("#outlook-badge").get_attribute("data-state") == "not_connected"


def test_refused_on_behalf_booking_in_personal_mode(page, provider, mode, alice, bob, atlas):
    mode("Personal")
    PersonalToken.objects.create(user=alice, provider=provider, account_email=ALICE,
                                 token_cache_encrypted=crypto.encrypt("{}"), connected_at=timezone.now())
    sign_in(page)
    page.goto(f"/rooms/{atlas.pk}/book/?date={days_ahead(3, 9).date().isoformat()}&start=09:00&end=10:00")
    hidden = page.locator("#on-behalf-hidden")
    assert "can only be made for yourself" in hidden.inner_text()
    assert page.locator("select[name=requested_for]").count() == 0
    # A crafted POST (the field added back by hand) is refused as a form error, not a server error.
    page.evaluate(f"""() => {{
        const input = document.createElement('input');
        input.type = 'hidden'; input.name = 'requested_for'; input.value = '{bob.pk}';
        document.querySelector('form.booking').appendChild(input);
    }}""")
    page.get_by_label("Subject").fill("For Bob")
    response_status = []
    page.on("response", lambda r: response_status.append(r.status) if r.request.method == "POST" else None)
    page.locator("#book-submit").click()
    page.wait_for_load_state()
    assert response_status and response_status[-1] == 200
    assert "can only be made for yourself" in page.locator("#form-errors").inner_text()
    assert not Reservation.objects.filter(subject="For Bob").exists()


def own_meeting(room, owner, day, hour=9, **extra):
    return ReservationFactory(room=room, requested_for=owner, start=days_ahead(day, hour), end=days_ahead(day, hour + 1),
                              sync_mailbox="user", mailbox=owner.email, organizer=owner.email, event_id=f"E-{day}-{hour}",
                              sync_state="synced", **extra)


def room_meeting(room, owner, day, hour=9):
    return ReservationFactory(room=room, requested_for=owner, start=days_ahead(day, hour), end=days_ahead(day, hour + 1),
                              sync_mailbox="other", mailbox=room.mailbox, organizer=room.mailbox, event_id=f"R-{day}-{hour}",
                              sync_state="synced", subject="Room-organized")


def open_dialog(pg, trigger):
    trigger.click()
    dialog = pg.locator("#portal-dialog")
    dialog.wait_for(state="visible")
    return dialog


def test_single_cancel_dialog_with_and_without_the_meeting_choice(page, provider, mode, alice, atlas):
    mode("Normal")
    mine = own_meeting(atlas, alice, 1, subject="Own meeting")
    organized = room_meeting(atlas, alice, 2)
    sign_in(page)
    page.goto("/my/")

    dialog = open_dialog(page, row_of(page, organized.pk).get_by_role("link", name="Cancel"))
    assert dialog.get_attribute("data-kind") == "single"
    assert dialog.get_by_label("Also cancel the meeting on people's calendars").count() == 0
    assert "The room organizes this meeting" in dialog.inner_text()
    screenshot(page, "cancel-dialog-room-organizer")
    dialog.get_by_role("link", name="Keep it").click()
    assert not dialog.is_visible()

    dialog = open_dialog(page, row_of(page, mine.pk).get_by_role("link", name="Cancel"))
    choice = dialog.get_by_label("Also cancel the meeting on people's calendars")
    assert choice.is_checked()
    screenshot(page, "cancel-dialog-single")
    dialog.get_by_label("Reason").fill("Moved to next week")
    dialog.get_by_role("button", name="Cancel reservation").click()
    page.wait_for_url("**/my/")
    assert "Cancelled “Own meeting”" in page.locator(".messages").inner_text()
    assert Reservation.objects.get(pk=mine.pk).state == State.CANCELLED
    assert SyncEvent.objects.filter(reservation=mine, type="delete").exists()

    dialog = open_dialog(page, row_of(page, organized.pk).get_by_role("link", name="Cancel"))
    dialog.get_by_role("button", name="Cancel reservation").click()
    page.wait_for_url("**/my/")
    assert Reservation.objects.get(pk=organized.pk).state == State.CANCELLED


def test_recurring_cancel_dialog(page, provider, mode, alice, atlas):
    mode("Normal")
    first = services.reservation_create(actor=alice, room=atlas, start=days_ahead(1, 16), end=days_ahead(1, 17),
                                        subject="Weekly sync", recurrence=Recurrence(frequency="weekly", count=4))
    Reservation.objects.filter(series=first.series).update(sync_mailbox="user", mailbox=ALICE, organizer=ALICE, sync_state="synced")
    occurrences = list(Reservation.objects.filter(series=first.series).order_by("start"))
    sign_in(page)
    page.goto("/my/")

    dialog = open_dialog(page, row_of(page, occurrences[1].pk).get_by_role("link", name="Cancel…"))
    assert dialog.get_attribute("data-kind") == "recurring"
    assert dialog.get_by_label("Only this occurrence").is_checked()
    assert dialog.get_by_label("Also cancel the meeting on people's calendars").is_visible()
    screenshot(page, "cancel-dialog-recurring")
    dialog.get_by_role("button", name="Cancel reservation").click()
    page.wait_for_url("**/my/")
    assert Reservation.objects.get(pk=occurrences[1].pk).state == State.CANCELLED
    assert Reservation.objects.filter(series=first.series, state=State.CANCELLED).count() == 1

    dialog = open_dialog(page, row_of(page, occurrences[0].pk).get_by_role("link", name="Cancel…"))
    assert "(3 left)" in dialog.inner_text()
    dialog.get_by_label("Every remaining occurrence of the series").check()
    dialog.get_by_role("button", name="Cancel reservation").click()
    page.wait_for_url("**/my/")
    assert Reservation.objects.filter(series=first.series, state=State.CANCELLED).count() == 4


def test_multi_select_cancel_dialog(page, provider, mode, alice, atlas, borealis):
    mode("Normal")
    a = own_meeting(atlas, alice, 1, subject="Standup A")
    b = own_meeting(borealis, alice, 2, subject="Standup B")
    c = room_meeting(atlas, alice, 3)
    d = own_meeting(atlas, alice, 4, subject="Standup D")
    sign_in(page)
    page.goto("/my/")

    page.locator(f"#sel-{a.pk}").check()
    page.locator(f"#sel-{b.pk}").check()
    dialog = open_dialog(page, page.get_by_role("button", name="Cancel selected…"))
    assert dialog.get_attribute("data-kind") == "multi"
    assert "Cancel 2 reservations" in dialog.inner_text()
    assert dialog.get_by_label("Also cancel the meeting on people's calendars").is_checked()
    screenshot(page, "cancel-dialog-multi")
    dialog.get_by_role("button", name="Cancel 2 reservations").click()
    page.wait_for_url("**/my/")
    assert set(Reservation.objects.filter(state=State.CANCELLED).values_list("pk", flat=True)) == {a.pk, b.pk}

    # With a room-organized meeting in the selection the choice is not offered.
    page.locator(f"#sel-{c.pk}").check()
    page.locator(f"#sel-{d.pk}").check()
    dialog = open_dialog(page, page.get_by_role("button", name="Cancel selected…"))
    assert dialog.get_by_label("Also cancel the meeting on people's calendars").count() == 0
    assert dialog.locator("#meeting-note").is_visible()
    dialog.get_by_role("button", name="Cancel 2 reservations").click()
    page.wait_for_url("**/my/")
    assert Reservation.objects.filter(state=State.CANCELLED).count() == 4


def test_multi_select_cancel_works_without_javascript(browser, portal, provider, mode, alice, atlas):
    mode("Normal")
    a = own_meeting(atlas, alice, 1)
    context = browser.new_context(base_url=portal, java_script_enabled=False)
    pg = context.new_page()
    try:
        sign_in(pg)
        pg.goto("/my/")
        pg.locator(f"#sel-{a.pk}").check()
        pg.get_by_role("button", name="Cancel selected…").click()
        assert "Cancel 1 reservation" in pg.locator("#dialog-content").inner_text()
        pg.get_by_role("button", name="Cancel 1 reservation").click()
        pg.wait_for_url("**/my/")
        assert Reservation.objects.get(pk=a.pk).state == State.CANCELLED
    finally:
        context.close()


def test_screenshots_of_the_finder_and_my_reservations(page, phone, provider, mode, alice, bob, hq, atlas, borealis, dojo, projector):
    mode("Normal")
    RoomFactory(building=hq, name="Cosmos", capacity=12, synced=True, equipment=[projector], arrangements=["Boardroom"])
    for hour, who in ((8, bob), (10, alice), (13, bob), (16, alice)):
        ReservationFactory(room=atlas, requested_for=who, start=days_ahead(1, hour), end=days_ahead(1, hour + 1, 30))
    ReservationFactory(room=dojo, requested_for=bob, start=days_ahead(1, 9), end=days_ahead(1, 12))
    own_meeting(borealis, alice, 2, subject="Quarterly planning")
    ReservationFactory(room=atlas, requested_for=alice, subject="Design crit", state="awaiting_confirmation", sync_state="pending",
                       start=days_ahead(3, 9), end=days_ahead(3, 10))
    ReservationFactory(room=atlas, requested_for=alice, subject="Offsite prep", state="rejected", sync_state="synced",
                       state_reason="Atlas declined: it is already booked at that time.", start=days_ahead(3, 11), end=days_ahead(3, 12))
    failing = ReservationFactory(room=borealis, requested_for=alice, subject="Vendor call", state="awaiting_confirmation",
                                 sync_state="error", sync_error="Graph answered 503 Service Unavailable",
                                 start=days_ahead(4, 15), end=days_ahead(4, 16))
    SyncEvent.objects.create(reservation=failing, type="create", state="new", attempts=4,
                             next_attempt_at=timezone.now() + timezone.timedelta(minutes=8), error="503 Service Unavailable")
    ReservationFactory(room=atlas, requested_for=alice, subject="Hiring sync (from Outlook)", origin=Origin.EXCHANGE, source="outlook",
                       sync_mailbox="other", mailbox=atlas.mailbox, organizer=ALICE, event_id="X1", sync_state="synced",
                       start=days_ahead(5, 10), end=days_ahead(5, 11))
    ReservationFactory(room=dojo, requested_for=alice, subject="Team lunch", start=days_ahead(6, 12), end=days_ahead(6, 13))

    for pg, suffix in ((page, "desktop"), (phone, "phone")):
        sign_in(pg)
        pg.goto(f"/?building=hq&date={days_ahead(1, 9).date().isoformat()}")
        assert pg.locator(".room").count() == 4
        screenshot(pg, f"finder-{suffix}")
        pg.goto("/my/")
        assert pg.locator("tbody tr").count() == 8
        screenshot(pg, f"my-reservations-{suffix}")
    text = page.locator("table").inner_text()
    assert "Rejected" in text and "Atlas declined" in text and "Sync error" in text and "Attempt 4 of 10" in text
