"""Emails reach people (issue 13, item 7): a subject with a line break can't make Django
refuse the message, and a transport failure is retried instead of the email being lost."""

import logging

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

from calendar_sync.common.notifications import notify_cancelled, notify_rejected
from reservations.models import Reservation
from tests.factories import ReservationFactory, days_ahead

pytestmark = pytest.mark.django_db

HOSTILE = "Line1\nBcc: x@evil.example"


def test_a_room_decline_about_a_subject_with_a_line_break_still_reaches_the_employee(alice, dojo):
    reservation = ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, subject=HOSTILE)
    notify_rejected(reservation, "Dojo declined the meeting.")
    [sent] = mail.outbox
    assert sent.to == [alice.email]
    assert sent.subject == "Room not available: Line1 Bcc: x@evil.example"
    assert "\n" not in sent.message()["Subject"] and not sent.bcc and "Bcc" not in sent.message()


def test_a_cancellation_from_outlook_about_a_subject_with_a_line_break_still_reaches_the_employee(alice, dojo):
    reservation = ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, subject="Review\r\n\tagain")
    notify_cancelled(reservation, "Cancelled in Outlook.")
    [sent] = mail.outbox
    assert sent.subject == "Reservation cancelled: Review again"


def test_a_subject_with_a_line_break_is_booked_as_one_line(alice_api, dojo):
    body = {"room": dojo.pk, "subject": HOSTILE, "start": days_ahead(1, 9).isoformat(), "end": days_ahead(1, 10).isoformat()}
    response = alice_api.post("/api/v1/reservations/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["subject"] == Reservation.objects.get().subject == "Line1 Bcc: x@evil.example"


def test_a_subject_with_a_line_break_typed_in_the_portal_is_booked_as_one_line(client, alice, dojo):
    client.force_login(alice)
    data = {"subject": HOSTILE, "date": days_ahead(1, 9).date().isoformat(), "start_time": "09:00", "end_time": "10:00"}
    client.post(f"/rooms/{dojo.pk}/book/", data)
    assert Reservation.objects.get().subject == "Line1 Bcc: x@evil.example"


class FlakyBackend(LocmemBackend):
    """Fails the first message it is given, like an SMTP server that was down for a moment."""

    failures = 1

    def send_messages(self, messages):
        if FlakyBackend.failures:
            FlakyBackend.failures -= 1
            raise ConnectionRefusedError("SMTP is down")
        return super().send_messages(messages)


class DeadBackend(LocmemBackend):
    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP is down")


def test_an_email_the_mail_server_refuses_once_is_delivered_by_the_retry(alice, dojo, settings):
    settings.EMAIL_DELIVERY_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.failures = 1
    reservation = ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, subject="Planning")
    notify_rejected(reservation, "Dojo declined the meeting.")
    [sent] = mail.outbox
    assert sent.subject == "Room not available: Planning" and sent.to == [alice.email]


def test_an_email_that_can_never_be_sent_is_logged_as_an_error_not_dropped_silently(alice, dojo, settings, caplog):
    settings.EMAIL_DELIVERY_BACKEND = f"{__name__}.DeadBackend"
    reservation = ReservationFactory(room=dojo, requested_by=alice, requested_for=alice, subject="Planning")
    with caplog.at_level(logging.WARNING, logger="workplace.mail"):
        notify_rejected(reservation, "Dojo declined the meeting.")
    assert not mail.outbox
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "workplace.mail"]
    assert errors and "Planning" in errors[-1].getMessage() and alice.email in errors[-1].getMessage()
