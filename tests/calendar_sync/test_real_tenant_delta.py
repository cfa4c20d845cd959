"""An expired delta token restarts a full round however Graph says so (issue 18 item 3): 410 Gone,
or a 4xx whose code is syncStateNotFound, syncStateInvalid or resyncRequired (any case).
https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset"""

from __future__ import annotations

import pytest

from calendar_sync.inbound import delta
from calendar_sync.models import MailboxDeltaState
from exchange_auth.graph import GraphError
from tests.calendar_sync.inbound_helpers import (
    ATLAS,
    BOB,
    outlook_meeting,
    outlook_reservations,
    room_copies,
)
from tests.factories import days_ahead
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def first_round(emulator):
    first = delta.pull_mailbox(ATLAS)
    assert first.full and MailboxDeltaState.objects.get(mailbox=ATLAS).delta_link
    return first


def test_a_400_sync_state_not_found_restarts_a_full_round(provider, emulator, emulator_server, bob, atlas):
    """The emulator's default answer to an expired token is Outlook's: 400 syncStateNotFound."""
    first_round(emulator)
    meeting = outlook_meeting(emulator, BOB, [ATLAS], days_ahead(3, 9), subject="While away")
    wait_for(lambda: any(e.ical_uid == meeting["iCalUId"] for e in room_copies(emulator_server, ATLAS)), message="the room's attendant answered")
    emulator.expire_delta_tokens(ATLAS)

    result = delta.pull_mailbox(ATLAS)

    assert result.expired_token and result.full
    state = MailboxDeltaState.objects.get(mailbox=ATLAS)
    assert state.last_error == "" and state.full_syncs == 2
    assert [r.ical_uid for r in outlook_reservations()] == [meeting["iCalUId"]]


def test_410_gone_still_restarts(provider, emulator, atlas):
    emulator.configure(delta_expired_mode="gone")
    first_round(emulator)
    emulator.expire_delta_tokens(ATLAS)
    result = delta.pull_mailbox(ATLAS)
    assert result.expired_token and result.full


@pytest.mark.parametrize("status,code", [(400, "SYNCSTATEINVALID"), (400, "resyncRequired"), (409, "syncStateNotFound")])
def test_any_4xx_with_a_restart_code_restarts(provider, emulator, atlas, status, code):
    first_round(emulator)
    emulator.inject_fault(method="GET", path="/calendarView/delta", mailbox=ATLAS, status=status, code=code, count=1)
    result = delta.pull_mailbox(ATLAS)
    assert result.expired_token and result.full


def test_other_4xx_still_fail_the_pull(provider, emulator, atlas):
    first_round(emulator)
    emulator.inject_fault(method="GET", path="/calendarView/delta", mailbox=ATLAS, status=400, code="ErrorInvalidRequest", count=1)
    with pytest.raises(GraphError):
        delta.pull_mailbox(ATLAS)
    assert "ErrorInvalidRequest" in MailboxDeltaState.objects.get(mailbox=ATLAS).last_error
