"""The SPEC §3 mode table, written once: for an action, which credential acts,
which mailbox holds the meeting and who organizes it.

Plain values in, a plan out — no reservation models (exchange_auth imports no
other app of ours). ``reservations.rules`` and ``calendar_sync`` both use it.

| mode     | user-triggered action | organizer / mailbox                                  | employee  | REST API, jobs |
|----------|-----------------------|------------------------------------------------------|-----------|----------------|
| Normal   | system                | requested-for employee (``user``); organizer account | organizer | system         |
|          |                       | (``other``) when that employee has no mailbox         |           |                |
| Strict   | system                | room mailbox if rooms organize, else delegated user / | attendee  | system         |
|          |                       | organizer account (``other``)                         |           |                |
| Personal | acting user's token   | the acting employee (``user``)                        | organizer | system         |

A room without a mailbox: the organizer account (else the delegated user) organizes, in
every mode, and the employee is an attendee (sync mailbox ``other``); the room is named in
the meeting's location only.

Personal mode, blocker reservations: they live in the delegated user's calendar
with the requested-for user (or ``sn_wsd_rsv.blocker_user``) as invitee (SPEC §3
lists this under Personal mode; elsewhere a blocker follows its mode's row).
Personal mode, a user changing a reservation whose meeting lives in another
mailbox (sync mailbox ``other``): the system credential keeps acting on it — the
employee's own token can't reach that mailbox.

Where the plan's mailbox is an employee's calendar and none of the provider's own
credentials can write there (the delegated user is a delegate of the rooms only, and
app-only is missing or refused by an application access policy), ``fallback_plan``
gives the table's answer for an employee without a mailbox: the organizer account
organizes, the employee is invited (sync mailbox ``other``).
"""

from dataclasses import dataclass
from enum import StrEnum

REST_API_SUBSOURCE = "sn_wsd_rest_api"
# Channels through which an employee acts in person (SPEC §3 "user-triggered").
USER_CHANNELS = frozenset({"portal", "quick_reservation", "mobile", "event_planner"})


class Mode(StrEnum):
    NORMAL = "Normal"
    STRICT = "Strict"
    PERSONAL = "Personal"


class Credential(StrEnum):
    SYSTEM = "system"  # app-only client credentials, or the provider's delegated user when connected
    PERSONAL = "personal"  # the acting employee's own token


@dataclass(frozen=True)
class ProviderAccounts:
    """The provider settings the table needs."""

    delegated_user: str = ""
    organizer_account: str = ""
    rooms_organize: bool = False

    @property
    def service_account(self) -> str:
        """The mailbox that organizes meetings on the product's behalf."""
        return self.organizer_account or self.delegated_user


@dataclass(frozen=True)
class SyncPlan:
    credential: Credential
    # Whose personal token acts (only with Credential.PERSONAL).
    token_user: str
    # The mailbox the product writes the meeting into (and that holds it).
    mailbox: str
    sync_mailbox: str  # "user" | "other"
    organizer: str
    organizer_is_room: bool
    # The requested-for employee's role on the meeting: "organizer" or "attendee".
    employee_role: str
    # Extra invitee for blocker reservations.
    invitee: str = ""

    @property
    def room_is_attendee(self) -> bool:
        """The room is always on the meeting as a resource unless it organizes it."""
        return not self.organizer_is_room


def is_user_triggered(*, source: str, subsource: str, by_user: bool = True) -> bool:
    """An employee acting in person through one of the user channels.

    REST API calls (subsource ``sn_wsd_rest_api``), Outlook-originated changes and
    background jobs are not user-triggered and always use the system credential."""
    return by_user and subsource != REST_API_SUBSOURCE and source in USER_CHANNELS


class PlanError(ValueError):
    """The provider lacks an account the plan needs (e.g. no organizer account)."""


def plan_sync(
    *,
    mode: Mode | str,
    source: str,
    subsource: str,
    kind: str,
    acting_user: str,
    requested_for: str,
    requested_for_has_mailbox: bool,
    room_mailbox: str,
    accounts: ProviderAccounts,
    blocker_user: str = "",
    by_user: bool = True,
    existing_sync_mailbox: str = "",
) -> SyncPlan:
    """Decide credential, mailbox and organizer for one reservation action (SPEC §3).

    ``source``/``subsource`` are the channel of *this action* (for an update or a
    cancel: the channel of the change, not of the original booking);
    ``existing_sync_mailbox`` is the stored sync mailbox of a reservation being
    updated or cancelled ("" for a create)."""
    mode = Mode(mode)
    user_triggered = is_user_triggered(source=source, subsource=subsource, by_user=by_user)

    # 1. Personal mode: blockers live in the delegated user's calendar, the person invited.
    if kind == "blocker" and mode is Mode.PERSONAL:
        holder = accounts.delegated_user or accounts.organizer_account
        if not holder:
            raise PlanError("Blocker reservations need the provider's delegated user.")
        return SyncPlan(
            credential=Credential.SYSTEM, token_user="", mailbox=holder, sync_mailbox="other",
            organizer=holder, organizer_is_room=False, employee_role="attendee",
            invitee=blocker_user or requested_for,
        )

    # 1b. A synced room without a mailbox (the Archibus seed, "Not using room mailboxes"): the
    #     provider's organizer account organizes its meetings in every mode, the room named in
    #     the location, the requested-for employee invited. Its calendar isn't watched for them.
    if not room_mailbox:
        return _service_account_plan(accounts)

    # 2. Personal mode, an employee acting in person: their own token, their calendar
    #    (unless the meeting already lives in another mailbox: see the module docstring;
    #    for an existing meeting the mailbox stored on the reservation is the one to use).
    if mode is Mode.PERSONAL and user_triggered:
        if existing_sync_mailbox == "other":
            return _service_account_plan(accounts)
        return SyncPlan(
            credential=Credential.PERSONAL, token_user=acting_user, mailbox=acting_user,
            sync_mailbox="user", organizer=acting_user, organizer_is_room=False, employee_role="organizer",
        )

    # 3. Strict mode: the room organizes when it can, else the service account.
    if mode is Mode.STRICT:
        if room_mailbox and accounts.rooms_organize:
            return SyncPlan(
                credential=Credential.SYSTEM, token_user="", mailbox=room_mailbox, sync_mailbox="other",
                organizer=room_mailbox, organizer_is_room=True, employee_role="attendee",
            )
        return _service_account_plan(accounts)

    # 4. Normal mode, and Personal mode's non-user actions (REST API, jobs): the
    #    system credential writes into the requested-for employee's calendar.
    if requested_for and requested_for_has_mailbox:
        return SyncPlan(
            credential=Credential.SYSTEM, token_user="", mailbox=requested_for, sync_mailbox="user",
            organizer=requested_for, organizer_is_room=False, employee_role="organizer",
        )
    return _service_account_plan(accounts)


def _service_account_plan(accounts: ProviderAccounts) -> SyncPlan:
    account = accounts.service_account
    if not account:
        raise PlanError("The calendar provider has neither an organizer account nor a delegated user.")
    return SyncPlan(
        credential=Credential.SYSTEM, token_user="", mailbox=account, sync_mailbox="other",
        organizer=account, organizer_is_room=False, employee_role="attendee",
    )


def fallback_plan(plan: SyncPlan, accounts: ProviderAccounts) -> SyncPlan | None:
    """The plan when nothing can write into ``plan.mailbox`` (an employee's calendar): the
    service account organizes and the employee is invited. None when there is nothing to
    fall back to (the plan isn't the employee's calendar, or no service account)."""
    account = accounts.service_account
    if plan.credential is not Credential.SYSTEM or plan.sync_mailbox != "user" or not account:
        return None
    if account.lower() == plan.mailbox.lower():
        return None
    return _service_account_plan(accounts)
