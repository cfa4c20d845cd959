"""In-memory directory and mailbox state, with a JSON snapshot form.

All state lives in one ``Store`` owned by the server's event loop thread; the
Graph handlers, the booking attendant and the control API mutate it there.

About 400 lines on purpose: every entity the emulator keeps (users, places, events,
subscriptions, apps) and its snapshot form sit in one file, so the state is read whole.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

from . import recurrence as rec
from .timeutil import now, resolve_tz

DEFAULT_CONFIG = {
    "access_token_lifetime": 3600,  # seconds
    "refresh_token_lifetime": 90 * 24 * 3600,
    "throttle_concurrency": 4,  # per app per mailbox, like Outlook's MailboxConcurrency
    "throttle_requests": 10000,  # per app per mailbox per window
    "throttle_window_seconds": 600,
    # Outlook event subscriptions without resource data live up to 10,080 minutes (7 days):
    # https://learn.microsoft.com/en-us/graph/api/resources/subscription?view=graph-rest-1.0#subscription-lifetime
    "subscription_max_minutes": 10080,
    # http notification URLs: "refuse" (as Graph), "loopback" or "any" (development only); see subscriptions.py
    "http_notification_urls": "refuse",
    # an expired delta token: "syncStateNotFound" (400, as Outlook answers) or "gone" (410); see delta.py
    "delta_expired_mode": "syncStateNotFound",
    "validation_timeout_seconds": 10.0,
    # Change-notification delivery as Graph does it (see subscriptions.py, "notifications"):
    # https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
    "notification_timeout_seconds": 3.0,  # Graph's HTTP client timeout
    "notification_retry_delays": [5.0, 15.0, 60.0, 300.0],  # back-off, then doubling ...
    "notification_retry_max_seconds": 14400.0,  # ... for up to 4 hours, then the notification is discarded
    # Graph batches: "when many changes occur, Microsoft Graph may send multiple notifications that
    # correspond to different subscriptions in the same POST request" (the page above). So by
    # default the changes of one moment (one request's copies: a meeting's rooms, its organizer)
    # share a POST, up to 25; a window > 0 gathers a burst's; 1 is one POST per change.
    "notification_batch_max": 25,  # change notifications per POST (its changeNotificationCollection's value)
    "notification_batch_window_ms": 0.0,  # how long the first change waits for others to share its POST
    "notification_slow_ms": 2900.0,  # an answer slower than this counts as slow
    "notification_throttle_min_responses": 100,  # slow share evaluated once the endpoint answered this many
    "notification_slow_percent": 10.0,  # at this share of slow answers the endpoint is throttled ...
    "notification_drop_percent": 15.0,  # ... and at this one its notifications are dropped
    "notification_throttle_window_seconds": 600.0,  # the tally is flushed this often
    "notification_throttled_delay_seconds": 600.0,  # a throttled endpoint's notifications (and retries) wait this
    "attendant_delay_seconds": 0.0,  # how long the room's booking attendant takes to answer (Exchange: seconds)
    "latency_ms": 0,  # added to every Graph request (makes concurrency observable)
    # Real Graph's latency per kind of request, in ms: {"read": [50, 150], "write": [150, 400]}
    # (uniform in each range, drawn from a generator seeded with latency_seed; a kind missing
    # takes latency_ms). Microsoft documents no figure; these are what a tenant sees (issue 17).
    "latency": {},
    "latency_seed": 1,
    "delta_page_size": 100,
    "page_size": 10,  # calendarView/events default page size, as Graph's
    "redirect_uris": [],  # extra redirect URIs accepted for every app
    # A repeated POST with a known transactionId returns the first event. Graph documents
    # transactionId only as avoiding redundant POSTs, not what a duplicate gets: false makes
    # a repeat create a second event (stricter), so clients can't lean on it.
    "transaction_dedupe": True,
}


def new_change_key() -> str:
    return base64.b64encode(b"\x00\x00\x00\x16" + os.urandom(14)).decode()


def new_event_id(mailbox_guid: str) -> str:
    raw = b"\x00\x00\x00\x00" + uuid.UUID(mailbox_guid).bytes + b"\x00\x46\x00\x00" + os.urandom(24)
    return base64.urlsafe_b64encode(raw).decode()


def new_ical_uid() -> str:
    # Exchange's iCalUId: a hex GlobalObjectId
    return "040000008200E00074C5B7101A82E008" + "00000000" + secrets.token_hex(24).upper()


OCC_PREFIX = b"\x01OCC"


def extended_property_key(prop_id: str) -> str:
    """An extended property's id as Exchange compares it: the type and the property set's GUID
    regardless of case, the name as given (names are case-sensitive):
    https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get?view=graph-rest-1.0"""
    parts = prop_id.split(" ", 3)
    if len(parts) == 4 and parts[2].lower() == "name":
        return f"{parts[0].lower()} {parts[1].lower()} name {parts[3]}"
    return " ".join(prop_id.split()).lower()


def occurrence_id(master_id: str, day: date) -> str:
    raw = OCC_PREFIX + day.isoformat().encode() + b"|" + master_id.encode()
    return base64.urlsafe_b64encode(raw).decode()


def parse_occurrence_id(event_id: str) -> tuple[str, date] | None:
    try:
        raw = base64.urlsafe_b64decode(event_id.encode() + b"==")
    except (ValueError, TypeError):
        return None
    if not raw.startswith(OCC_PREFIX):
        return None
    try:
        day_s, master = raw[len(OCC_PREFIX) :].decode().split("|", 1)
        return master, date.fromisoformat(day_s)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class User:
    id: str
    upn: str
    display_name: str
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    office_location: str | None = None
    password: str | None = None
    kind: str = "user"  # "user" or "room"
    time_zone: str = "W. Europe Standard Time"
    room: dict | None = None  # place properties for rooms
    auto_accept: bool = True  # the room's booking attendant answers
    # Exchange's resource delegates with AllBookInPolicy off (Set-CalendarProcessing -AllBookInPolicy
    # $false -AllRequestInPolicy $true -ResourceDelegates ...): an in-policy request on a free slot is
    # forwarded to these users and answered tentative until one of them accepts or declines it.
    booking_delegates: list = field(default_factory=list)  # UPNs
    # Set-CalendarProcessing's allowance for recurring requests (Exchange's defaults: 0 and 0):
    # https://learn.microsoft.com/en-us/powershell/module/exchange/set-calendarprocessing
    conflict_percentage_allowed: int = 0
    maximum_conflict_instances: int = 0
    # The default calendar's online meeting providers (calendar resource, v1.0): which providers
    # its meetings may use, and the one Outlook picks by default:
    # https://learn.microsoft.com/en-us/graph/api/resources/calendar?view=graph-rest-1.0
    allowed_online_meeting_providers: list = field(default_factory=lambda: ["teamsForBusiness"])
    default_online_meeting_provider: str = "teamsForBusiness"

    @property
    def mail(self) -> str:
        return self.upn


@dataclass
class App:
    client_id: str
    secret: str | None
    display_name: str
    app_roles: list = field(default_factory=list)
    delegated_scopes: list = field(default_factory=list)
    redirect_uris: list = field(default_factory=list)
    allow_loopback_redirects: bool = True
    allow_public_client: bool = True
    certificates: list = field(default_factory=list)  # PEM certificates whose keys may sign client assertions
    secret_expires_at: float | None = None  # epoch seconds; past it the secret is refused (AADSTS7000222)


DT_FIELDS = ("created", "modified", "start", "end")


@dataclass
class Event:
    id: str
    mailbox: str  # owner user id
    change_key: str
    ical_uid: str
    created: datetime
    modified: datetime
    start: datetime
    end: datetime
    start_tz: str = "UTC"
    end_tz: str = "UTC"
    subject: str = ""
    body: dict = field(default_factory=lambda: {"contentType": "html", "content": ""})
    is_all_day: bool = False
    location: dict = field(default_factory=dict)
    locations: list = field(default_factory=list)
    attendees: list = field(default_factory=list)
    organizer: dict = field(default_factory=dict)  # {"name", "address"}
    is_organizer: bool = True
    is_cancelled: bool = False
    response: dict = field(default_factory=lambda: {"response": "organizer", "time": "0001-01-01T00:00:00Z"})
    show_as: str = "busy"
    importance: str = "normal"
    sensitivity: str = "normal"
    categories: list = field(default_factory=list)
    recurrence: dict | None = None
    transaction_id: str | None = None
    allow_new_time_proposals: bool = True
    response_requested: bool = True
    reminder_minutes: int = 15
    is_reminder_on: bool = True
    hide_attendees: bool = False
    is_online_meeting: bool = False
    online_meeting_provider: str = "unknown"
    online_meeting: dict | None = None  # onlineMeetingInfo, made by online_meeting_for
    exceptions: dict = field(default_factory=dict)  # "YYYY-MM-DD" -> overrides (start/end iso, subject, change_key ...)
    cancelled_dates: list = field(default_factory=list)
    extended_properties: list = field(default_factory=list)  # singleValueExtendedProperties: [{"id", "value"}]
    seq: int = 0

    def bump(self) -> None:
        self.change_key = new_change_key()
        self.modified = now()

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    def to_json(self) -> dict:
        d = asdict(self)
        for f in DT_FIELDS:
            d[f] = d[f].isoformat()
        return d

    @classmethod
    def from_json(cls, d: dict) -> Event:
        d = dict(d)
        for f in DT_FIELDS:
            d[f] = datetime.fromisoformat(d[f])
        return cls(**d)


@dataclass
class Instance:
    """One appearance of an event on the calendar: a single event or one occurrence of a series."""

    event: Event
    day: date | None  # occurrence date (local to the series) or None for a single instance
    start: datetime
    end: datetime
    override: dict | None = None

    @property
    def id(self) -> str:
        return self.event.id if self.day is None else occurrence_id(self.event.id, self.day)

    @property
    def subject(self) -> str:
        return (self.override or {}).get("subject", self.event.subject)

    @property
    def show_as(self) -> str:
        return (self.override or {}).get("show_as", self.event.show_as)


@dataclass
class Mailbox:
    owner: str
    events: dict = field(default_factory=dict)  # id -> Event
    tombstones: dict = field(default_factory=dict)  # id -> seq of deletion
    seq: int = 0
    epoch: int = 0  # bumped when delta tokens are expired
    transactions: dict = field(default_factory=dict)  # transactionId -> event id
    delegates: list = field(default_factory=list)  # user ids with write access


def instances(ev: Event, window_start: datetime, window_end: datetime) -> list[Instance]:
    """Appearances of ``ev`` overlapping [window_start, window_end)."""
    if ev.recurrence is None:
        if ev.start < window_end and (ev.end > window_start or (ev.start == ev.end and ev.start >= window_start)):
            return [Instance(ev, None, ev.start, ev.end)]
        return []
    out = []
    tz = resolve_tz(ev.start_tz)
    local_start = ev.start.astimezone(tz)
    duration = ev.end - ev.start
    until = (window_end.astimezone(tz) + timedelta(days=1)).date()
    cancelled = set(ev.cancelled_dates)
    for day in rec.occurrence_dates(ev.recurrence, until=until):
        key = day.isoformat()
        if key in cancelled:
            continue
        start = datetime.combine(day, local_start.timetz().replace(tzinfo=None)).replace(tzinfo=tz).astimezone(UTC)
        end = start + duration
        override = ev.exceptions.get(key)
        if override:
            start = datetime.fromisoformat(override.get("start", start.isoformat()))
            end = datetime.fromisoformat(override.get("end", end.isoformat()))
        if start < window_end and end > window_start:
            out.append(Instance(ev, day, start, end, override))
    return out


def occurrence(ev: Event, day: date) -> Instance | None:
    if ev.recurrence is None or day.isoformat() in ev.cancelled_dates:
        return None
    tz = resolve_tz(ev.start_tz)
    for d in rec.occurrence_dates(ev.recurrence, until=day):
        if d == day:
            local_start = ev.start.astimezone(tz)
            start = datetime.combine(day, local_start.timetz().replace(tzinfo=None)).replace(tzinfo=tz).astimezone(UTC)
            end = start + (ev.end - ev.start)
            override = ev.exceptions.get(day.isoformat())
            if override:
                start = datetime.fromisoformat(override.get("start", start.isoformat()))
                end = datetime.fromisoformat(override.get("end", end.isoformat()))
            return Instance(ev, day, start, end, override)
    return None


ChangeListener = Callable[[str, str, str], None]  # (mailbox user id, event id, changeType)


class Store:
    """The tenant: directory, app registrations, consents, mailboxes, subscriptions."""

    def __init__(self) -> None:
        self.tenant_id = ""
        self.tenant_name = ""
        self.domain = ""
        self.users: dict[str, User] = {}
        self.by_upn: dict[str, User] = {}
        self.apps: dict[str, App] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.consents: dict[str, dict] = {}  # "userId|clientId" -> {"scopes": [...], "granted_at": ts, "revoked": bool}
        self.access_policy: dict[str, list] = {}  # clientId -> allowed mailbox user ids
        self.subscriptions: dict[str, dict] = {}
        self.config: dict = dict(DEFAULT_CONFIG)
        self.listeners: list[ChangeListener] = []
        self.messages: dict[str, dict] = {}  # attendee address -> meeting messages received, by kind (calendar.py)

    # -- directory -------------------------------------------------------
    def add_user(self, user: User) -> User:
        old = self.by_upn.get(user.upn.lower())
        if old is not None:
            user.id = old.id
        self.users[user.id] = user
        self.by_upn[user.upn.lower()] = user
        self.mailboxes.setdefault(user.id, Mailbox(owner=user.id))
        return user

    def find_user(self, key: str) -> User | None:
        if not key:
            return None
        key = key.strip().strip("'")
        return self.users.get(key) or self.by_upn.get(key.lower()) or self.users.get(key.lower())

    def tenant_matches(self, tenant: str) -> bool:
        t = tenant.lower()
        return t in (self.tenant_id.lower(), self.tenant_name.lower(), self.domain.lower(), f"{self.tenant_name}.onmicrosoft.com".lower())

    # -- consent -----------------------------------------------------------
    def consent(self, user_id: str, client_id: str) -> dict | None:
        return self.consents.get(f"{user_id}|{client_id}")

    def grant_consent(self, user_id: str, client_id: str, scopes: list[str]) -> None:
        entry = self.consents.get(f"{user_id}|{client_id}")
        if entry is None or entry.get("revoked"):
            fresh = {"scopes": sorted(set(scopes)), "granted_at": time.time(), "revoked": False}
            if entry and entry.get("revoked_at"):
                fresh["revoked_at"] = entry["revoked_at"]  # tokens issued before the revocation stay dead
            self.consents[f"{user_id}|{client_id}"] = fresh
        else:
            entry["scopes"] = sorted(set(entry["scopes"]) | set(scopes))

    # -- events ------------------------------------------------------------
    def emit(self, mailbox_id: str, event: Event, change_type: str) -> None:
        mb = self.mailboxes[mailbox_id]
        mb.seq += 1
        if change_type == "deleted":
            mb.tombstones[event.id] = mb.seq
        else:
            event.seq = mb.seq
        for listener in list(self.listeners):
            listener(mailbox_id, event.id, change_type)

    def put_event(self, ev: Event, change_type: str) -> None:
        self.mailboxes[ev.mailbox].events[ev.id] = ev
        self.emit(ev.mailbox, ev, change_type)

    def remove_event(self, ev: Event) -> None:
        mb = self.mailboxes[ev.mailbox]
        if mb.events.pop(ev.id, None) is not None:
            self.emit(ev.mailbox, ev, "deleted")

    def find_by_ical(self, mailbox_id: str, ical_uid: str) -> Event | None:
        for ev in self.mailboxes[mailbox_id].events.values():
            if ev.ical_uid == ical_uid:
                return ev
        return None

    # -- snapshot ------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "tenant": {"id": self.tenant_id, "name": self.tenant_name, "domain": self.domain},
            "users": [asdict(u) for u in self.users.values()],
            "apps": [asdict(a) for a in self.apps.values()],
            "mailboxes": [
                {
                    "owner": mb.owner,
                    "seq": mb.seq,
                    "epoch": mb.epoch,
                    "transactions": mb.transactions,
                    "delegates": mb.delegates,
                    "tombstones": mb.tombstones,
                    "events": [e.to_json() for e in mb.events.values()],
                }
                for mb in self.mailboxes.values()
            ],
            "consents": self.consents,
            "access_policy": self.access_policy,
            "subscriptions": self.subscriptions,
            "config": self.config,
        }

    def load_json(self, data: dict) -> None:
        listeners = self.listeners
        self.__init__()
        self.listeners = listeners
        t = data.get("tenant") or {}
        self.tenant_id, self.tenant_name, self.domain = t.get("id", ""), t.get("name", ""), t.get("domain", "")
        for u in data.get("users", []):
            self.add_user(User(**u))
        for a in data.get("apps", []):
            self.apps[a["client_id"]] = App(**a)
        for m in data.get("mailboxes", []):
            mb = self.mailboxes.setdefault(m["owner"], Mailbox(owner=m["owner"]))
            mb.seq, mb.epoch = m.get("seq", 0), m.get("epoch", 0)
            mb.transactions = dict(m.get("transactions", {}))
            mb.delegates = list(m.get("delegates", []))
            mb.tombstones = dict(m.get("tombstones", {}))
            for e in m.get("events", []):
                ev = Event.from_json(e)
                mb.events[ev.id] = ev
        self.consents = dict(data.get("consents", {}))
        self.access_policy = dict(data.get("access_policy", {}))
        self.subscriptions = dict(data.get("subscriptions", {}))
        self.config = {**DEFAULT_CONFIG, **data.get("config", {})}


def stable_guid(*parts: str) -> str:
    """A deterministic GUID so the demo tenant's ids are the same on every run."""
    return str(uuid.UUID(hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]))
