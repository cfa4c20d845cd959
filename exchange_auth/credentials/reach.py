"""Which of the provider's own credentials can act on a mailbox (SPEC §3 "system-to-system").

The provider has up to two identities of its own: app-only (client credentials, Graph's
application permission, possibly narrowed by an application access policy) and the
delegated user (delegated Calendars.ReadWrite(.Shared)). A delegated token reaches only
the signed-in user's own mailbox and the mailboxes it is a delegate of — SPEC §3 makes it
a delegate on the rooms, not on every employee's calendar — so "the system credential"
is chosen per target mailbox, not once per provider:

1. the delegated user's own mailbox, or one it is a delegate of: the delegated token
   first (it is what the admin connected for), app-only second;
2. any other mailbox (an employee's calendar): app-only, when the provider has it;
3. neither: nothing writes there, and the caller follows the mode table's fallback
   (``modes.fallback_plan``: the organizer account organizes, the employee is invited).

Plain values in (the caller says whether the mailbox is one the delegated user is a
delegate of: exchange_auth knows no rooms), a ``Reach`` out."""

from __future__ import annotations

from dataclasses import dataclass

APP = "app"
DELEGATED = "delegated"


@dataclass(frozen=True)
class Reach:
    credentials: tuple[str, ...]  # in the order to try them; empty: none of ours can write there
    why: str  # one sentence for the sync event and the admins

    @property
    def first(self) -> str:
        return self.credentials[0] if self.credentials else ""


def has_app_credential(provider) -> bool:
    """The provider can get app-only tokens (a client secret, or a certificate where supported)."""
    return bool(getattr(provider, "has_client_secret", False) or getattr(provider, "has_certificate", False))


def delegated_identity(provider) -> str:
    return (getattr(provider, "delegated_connected_as", "") or provider.delegated_user_email or "").lower()


def reach(provider, mailbox: str, *, delegate_of: bool) -> Reach:
    """The credentials that can act on ``mailbox``, best first (see the module docstring)."""
    mailbox = (mailbox or "").lower()
    app = (APP,) if has_app_credential(provider) else ()
    delegated = provider.delegated_connected
    me = delegated_identity(provider)
    if delegated and mailbox and mailbox == me:
        return Reach((DELEGATED, *app), f"{mailbox} is the delegated user's own mailbox: the delegated token")
    if delegated and delegate_of:
        return Reach((DELEGATED, *app), f"the delegated user {me} is a delegate of {mailbox}: the delegated token")
    if app:
        why = f"app-only: the delegated user {me} is not a delegate of {mailbox}" if delegated else "app-only (no delegated user connected)"
        return Reach(app, why)
    if delegated:
        return Reach((), f"neither credential can write to {mailbox}: the delegated user {me} is not a delegate of it "
                         "and the provider has no app-only credential (client secret)")
    return Reach((), "the provider has neither an app-only credential nor a connected delegated user")
