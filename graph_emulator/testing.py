"""Helpers for tests: a user token without a browser, and a small client for the control API.

Sessions here set ``trust_env = False`` because REQUESTS_CA_BUNDLE would
otherwise override ``verify`` on this machine.
"""

from __future__ import annotations

import requests


def make_session(ca_path: str) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = ca_path
    return s


def password_token(base_url: str, ca_path: str, tenant: str, client_id: str, client_secret: str | None,
                   username: str, password: str, scope: str = "https://graph.microsoft.com/.default offline_access openid profile") -> dict:
    """Resource-owner password grant posted straight to /token (msal's flow would go to port 443 first)."""
    data = {"grant_type": "password", "client_id": client_id, "username": username, "password": password,
            "scope": scope, "client_info": "1"}
    if client_secret:
        data["client_secret"] = client_secret
    with make_session(ca_path) as s:
        r = s.post(f"{base_url}/{tenant}/oauth2/v2.0/token", data=data, timeout=10)
    body = r.json()
    if r.status_code != 200:
        raise RuntimeError(f"token request failed ({r.status_code}): {body}")
    return body


def app_token(base_url: str, ca_path: str, tenant: str, client_id: str, client_secret: str) -> dict:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
            "scope": "https://graph.microsoft.com/.default"}
    with make_session(ca_path) as s:
        r = s.post(f"{base_url}/{tenant}/oauth2/v2.0/token", data=data, timeout=10)
    if r.status_code != 200:
        raise RuntimeError(f"token request failed ({r.status_code}): {r.text}")
    return r.json()


class EmulatorControl:
    """A thin client for /_emulator/ (every method returns the decoded JSON, or None for 204)."""

    def __init__(self, base_url: str, ca_path: str, timeout: float = 15):
        self.base_url = base_url.rstrip("/")
        self.session = make_session(ca_path)
        self.timeout = timeout

    def _call(self, method: str, path: str, json=None, params=None):
        r = self.session.request(method, f"{self.base_url}/_emulator/{path}", json=json, params=params, timeout=self.timeout)
        if r.status_code >= 400:
            raise RuntimeError(f"control API {method} {path} failed ({r.status_code}): {r.text}")
        return None if r.status_code == 204 or not r.content else r.json()

    def reset(self, seed: str | None = None):
        return self._call("POST", "reset", {"seed": seed} if seed else {})

    def seed(self, payload: dict):
        return self._call("POST", "seed", payload)

    def snapshot(self) -> dict:
        return self._call("GET", "snapshot")

    def load_snapshot(self, data: dict):
        return self._call("POST", "snapshot", data)

    def inject_fault(self, **rule):
        """e.g. inject_fault(method="POST", path="/events$", mailbox="atlas@contoso.example", count=1, status=429, retry_after=2)
        or inject_fault(action="delay", seconds=5) or inject_fault(action="drop")."""
        return self._call("POST", "faults", rule)["faults"][0]

    def faults(self) -> list:
        return self._call("GET", "faults")["faults"]

    def clear_faults(self):
        return self._call("DELETE", "faults")

    def expire_delta_tokens(self, mailbox: str | None = None):
        return self._call("POST", "delta/expire", {"mailbox": mailbox} if mailbox else {})

    def set_notification_policy(self, drop: int = 0, duplicate: int = 0, reorder: int = 0, delay_seconds: float = 0):
        return self._call("POST", "notifications/policy",
                          {"drop": drop, "duplicate": duplicate, "reorder": reorder, "delay_seconds": delay_seconds})

    def set_notification_batching(self, max: int = 1, window_ms: float = 0):  # noqa: A002 (the control API's name)
        return self._call("POST", "notifications/batching", {"max": max, "window_ms": window_ms})

    def notifications(self) -> dict:
        return self._call("GET", "notifications")

    def clear_notifications(self):
        return self._call("DELETE", "notifications")

    def request_log(self, since: float | None = None, limit: int = 1000) -> dict:
        params = {"limit": limit}
        if since is not None:
            params["since"] = since
        return self._call("GET", "requests", params=params)

    def messages(self) -> dict:
        """{attendee address: {"invitation": n, "update": n, "cancellation": n}}"""
        return self._call("GET", "messages")["messages"]

    def clear_messages(self):
        return self._call("DELETE", "messages")

    def clear_request_log(self):
        return self._call("DELETE", "requests")

    def trigger_lifecycle(self, subscription_id: str, event: str):
        return self._call("POST", f"subscriptions/{subscription_id}/lifecycle", {"event": event})

    def subscriptions(self) -> list:
        return self._call("GET", "subscriptions")["subscriptions"]

    def revoke_consent(self, user: str, client_id: str):
        return self._call("POST", "consent/revoke", {"user": user, "client_id": client_id})

    def grant_consent(self, user: str, client_id: str, scopes: list | None = None):
        return self._call("POST", "consent/grant", {"user": user, "client_id": client_id, "scopes": scopes})

    def expire_tokens(self, user: str | None = None, client_id: str | None = None):
        return self._call("POST", "tokens/expire", {"user": user, "client_id": client_id})

    def configure(self, **config):
        """token lifetime, throttle limits, subscription max minutes, retry schedule ... (see GET config)."""
        return self._call("POST", "config", config)

    def config(self) -> dict:
        return self._call("GET", "config")

    def set_auto_accept(self, room: str, enabled: bool):
        return self._call("POST", f"rooms/{room}/auto_accept", {"enabled": enabled})

    def set_booking_delegates(self, room: str, delegates: list[str]):
        """The room's bookings wait for one of ``delegates`` to approve them ([] : booked by the attendant)."""
        return self._call("POST", f"rooms/{room}/booking_delegates", {"delegates": delegates})

    def calendar_processing(self, room: str, **settings):
        """Set-CalendarProcessing for a room (``ConflictPercentageAllowed``, ``MaximumConflictInstances``)."""
        return self._call("POST", f"rooms/{room}/calendar_processing", settings)

    def set_access_policy(self, client_id: str, mailboxes: list | None):
        return self._call("POST", "access_policy", {"client_id": client_id, "mailboxes": mailboxes})

    def set_online_meeting_providers(self, user: str, allowed: list, default: str | None = None):
        """The calendar of ``user`` allows these online meeting providers (``[]``: none)."""
        return self._call("POST", f"users/{user}/online_meeting_providers", {"allowed": allowed, "default": default})

    def create_event_as(self, user: str, payload: dict) -> dict:
        """Create an event in ``user``'s mailbox as they would in Outlook (no token needed)."""
        return self._call("POST", f"users/{user}/events", payload)

    def respond_as(self, user: str, ical_uid: str, action: str = "accept", send_response: bool = True, keep_declined: bool = False) -> dict:
        """``user`` answers the meeting ``ical_uid`` in Outlook (accept, tentativelyAccept or decline; a declined
        copy stays in their calendar, marked declined, with ``keep_declined``)."""
        return self._call("POST", f"users/{user}/respond",
                          {"iCalUId": ical_uid, "action": action, "sendResponse": send_response, "keepDeclined": keep_declined})

    def state(self) -> dict:
        return self._call("GET", "state")

    def close(self) -> None:
        self.session.close()
