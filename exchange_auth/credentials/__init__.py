"""Tokens for Microsoft Graph, acquired with msal (SPEC §3), one module per job:

- ``errors``: ``CredentialError`` / ``ReconnectRequired`` and the sentences
  that name why no token could be had (AADSTS codes, TLS, unreachable hosts);
- ``msal_apps``: the msal applications and the token caches behind them;
- ``tokens``: app-only, delegated-user and personal tokens, and the one a
  sync plan asks for;
- ``reach``: which of the provider's own credentials can act on a mailbox;
- ``flows``: the authorization-code sign-in that connects the delegated user
  or an employee's Outlook.

The public names are re-exported here so callers import ``exchange_auth.credentials``.
"""

from exchange_auth.credentials.errors import CredentialError, ReconnectRequired, translate_exception
from exchange_auth.credentials.flows import (
    Connection,
    begin_auth_code_flow,
    complete_auth_code_flow,
    connect_delegated_user,
    connect_personal,
    disconnect_delegated_user,
    disconnect_personal,
)
from exchange_auth.credentials.msal_apps import forget_cached_apps
from exchange_auth.credentials.reach import Reach, has_app_credential, reach
from exchange_auth.credentials.tokens import (
    GraphToken,
    app_token,
    delegated_user_token,
    has_personal_token,
    personal_token,
    system_token,
    token_for_plan,
)

__all__ = [
    "Connection",
    "CredentialError",
    "GraphToken",
    "Reach",
    "ReconnectRequired",
    "app_token",
    "begin_auth_code_flow",
    "complete_auth_code_flow",
    "connect_delegated_user",
    "connect_personal",
    "delegated_user_token",
    "disconnect_delegated_user",
    "disconnect_personal",
    "forget_cached_apps",
    "has_app_credential",
    "has_personal_token",
    "personal_token",
    "reach",
    "system_token",
    "token_for_plan",
    "translate_exception",
]
