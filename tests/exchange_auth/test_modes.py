"""The SPEC §3 mode table, one test per row and per exception to it."""

import pytest

from exchange_auth.modes import (
    Credential,
    Mode,
    PlanError,
    ProviderAccounts,
    is_user_triggered,
    plan_sync,
)

ACCOUNTS = ProviderAccounts(delegated_user="reservations@contoso.example", organizer_account="organizer@contoso.example")
ROOMS_ORGANIZE = ProviderAccounts(
    delegated_user="reservations@contoso.example", organizer_account="organizer@contoso.example", rooms_organize=True
)
ALICE, BOB, ATLAS = "alice@contoso.example", "bob@contoso.example", "atlas@contoso.example"


def plan(mode, *, source="portal", subsource="", kind="standard", acting=ALICE, requested_for=ALICE,
         has_mailbox=True, room=ATLAS, accounts=ACCOUNTS, **extra):
    return plan_sync(
        mode=mode, source=source, subsource=subsource, kind=kind, acting_user=acting, requested_for=requested_for,
        requested_for_has_mailbox=has_mailbox, room_mailbox=room, accounts=accounts, **extra,
    )


# --- Normal ---------------------------------------------------------------------------------


def test_normal_user_action_system_credential_employee_organizes_in_own_calendar():
    result = plan(Mode.NORMAL)
    assert result.credential is Credential.SYSTEM
    assert (result.mailbox, result.sync_mailbox, result.organizer, result.employee_role) == (ALICE, "user", ALICE, "organizer")
    assert result.room_is_attendee


def test_normal_on_behalf_meeting_in_requested_for_calendar():
    result = plan(Mode.NORMAL, acting=ALICE, requested_for=BOB)
    assert (result.credential, result.mailbox, result.organizer) == (Credential.SYSTEM, BOB, BOB)


def test_normal_employee_without_mailbox_uses_organizer_account():
    result = plan(Mode.NORMAL, has_mailbox=False)
    assert result.credential is Credential.SYSTEM
    assert (result.mailbox, result.sync_mailbox, result.organizer) == ("organizer@contoso.example", "other", "organizer@contoso.example")
    assert result.employee_role == "attendee"


def test_normal_rest_api_uses_system_credential():
    result = plan(Mode.NORMAL, source="rest_api", subsource="sn_wsd_rest_api")
    assert result.credential is Credential.SYSTEM and result.mailbox == ALICE


def test_normal_without_any_service_account_and_no_mailbox_is_a_plan_error():
    with pytest.raises(PlanError, match="neither an organizer account nor a delegated user"):
        plan(Mode.NORMAL, has_mailbox=False, accounts=ProviderAccounts())


# --- Strict --------------------------------------------------------------------------------------


def test_strict_room_organizes_when_provider_lets_rooms_organize():
    result = plan(Mode.STRICT, accounts=ROOMS_ORGANIZE)
    assert result.credential is Credential.SYSTEM
    assert (result.mailbox, result.sync_mailbox, result.organizer) == (ATLAS, "other", ATLAS)
    assert result.organizer_is_room and not result.room_is_attendee
    assert result.employee_role == "attendee"


def test_strict_service_account_organizes_when_rooms_do_not():
    result = plan(Mode.STRICT)
    assert (result.credential, result.mailbox, result.sync_mailbox) == (Credential.SYSTEM, "organizer@contoso.example", "other")
    assert result.employee_role == "attendee" and result.room_is_attendee


def test_strict_room_without_mailbox_uses_service_account_even_if_rooms_organize():
    result = plan(Mode.STRICT, room="", accounts=ROOMS_ORGANIZE)
    assert result.organizer == "organizer@contoso.example" and not result.organizer_is_room


def test_strict_delegated_user_when_no_organizer_account():
    result = plan(Mode.STRICT, accounts=ProviderAccounts(delegated_user="reservations@contoso.example"))
    assert result.organizer == "reservations@contoso.example"


def test_strict_rest_api_same_organizer_system_credential():
    result = plan(Mode.STRICT, source="rest_api", subsource="sn_wsd_rest_api", accounts=ROOMS_ORGANIZE)
    assert (result.credential, result.organizer) == (Credential.SYSTEM, ATLAS)


# --- Personal --------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["portal", "quick_reservation", "mobile", "event_planner"])
def test_personal_user_action_uses_own_token_and_calendar(source):
    result = plan(Mode.PERSONAL, source=source)
    assert result.credential is Credential.PERSONAL and result.token_user == ALICE
    assert (result.mailbox, result.sync_mailbox, result.organizer, result.employee_role) == (ALICE, "user", ALICE, "organizer")


def test_personal_rest_api_subsource_uses_system_credential():
    result = plan(Mode.PERSONAL, source="portal", subsource="sn_wsd_rest_api")
    assert result.credential is Credential.SYSTEM and result.token_user == ""
    assert (result.mailbox, result.sync_mailbox) == (ALICE, "user")


def test_personal_non_user_action_uses_system_credential():
    result = plan(Mode.PERSONAL, by_user=False)
    assert result.credential is Credential.SYSTEM


def test_personal_outlook_source_is_not_user_triggered():
    assert plan(Mode.PERSONAL, source="outlook").credential is Credential.SYSTEM


def test_personal_blocker_in_delegated_calendar_with_requested_for_invited():
    result = plan(Mode.PERSONAL, kind="blocker", acting="admin@contoso.example", requested_for=BOB)
    assert (result.credential, result.mailbox, result.sync_mailbox) == (Credential.SYSTEM, "reservations@contoso.example", "other")
    assert result.invitee == BOB


def test_personal_blocker_invites_blocker_user_property_when_set():
    result = plan(Mode.PERSONAL, kind="blocker", requested_for=BOB, blocker_user="facilities@contoso.example")
    assert result.invitee == "facilities@contoso.example"


def test_blocker_outside_personal_follows_its_mode_row():
    assert plan(Mode.NORMAL, kind="blocker", requested_for=BOB).mailbox == BOB
    assert plan(Mode.STRICT, kind="blocker", accounts=ROOMS_ORGANIZE).organizer == ATLAS


def test_personal_change_of_meeting_in_other_mailbox_keeps_system_credential():
    result = plan(Mode.PERSONAL, existing_sync_mailbox="other")
    assert result.credential is Credential.SYSTEM and result.sync_mailbox == "other"


def test_user_channels():
    assert is_user_triggered(source="portal", subsource="")
    assert not is_user_triggered(source="rest_api", subsource="sn_wsd_rest_api")
    assert not is_user_triggered(source="portal", subsource="sn_wsd_rest_api")
    assert not is_user_triggered(source="portal", subsource="", by_user=False)
