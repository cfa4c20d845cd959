"""The demo tenant (DESIGN.md "Demo tenant"): fixed ids, so tests and demos can rely on them."""

from __future__ import annotations

from .model import App, Store, User, stable_guid
from .tokens import check_certificate

DEMO_TENANT_ID = "6f1c4c2e-8d3a-4b6e-9a51-2c7d0e5f4a10"
DEMO_TENANT_NAME = "contoso"
DEMO_DOMAIN = "contoso.example"
DEMO_PASSWORD = "demo-password"
DEMO_CLIENT_ID = "wsd-demo-client"
DEMO_CLIENT_SECRET = "demo-secret"
GRAPH_RESOURCE = "https://graph.microsoft.com"

DEMO_APP_ROLES = ["Calendars.ReadWrite", "Place.Read.All", "User.Read.All"]
DEMO_DELEGATED_SCOPES = [
    "Calendars.ReadWrite",
    "Calendars.ReadWrite.Shared",
    "offline_access",
    "openid",
    "profile",
    "User.Read",
]

HQ_ADDRESS = {
    "street": "1 Harbour Street",
    "city": "Amsterdam",
    "state": "Noord-Holland",
    "postalCode": "1011 AB",
    "countryOrRegion": "NL",
}


def _user(upn: str, name: str, given: str | None, surname: str | None, title: str | None = None) -> User:
    return User(
        id=stable_guid("contoso-user", upn),
        upn=upn,
        display_name=name,
        given_name=given,
        surname=surname,
        job_title=title,
        office_location="HQ",
        password=DEMO_PASSWORD,
        time_zone="W. Europe Standard Time",
    )


def _room(upn: str, name: str, capacity: int, floor: int) -> User:
    return User(
        id=stable_guid("contoso-room", upn),
        upn=upn,
        display_name=name,
        kind="room",
        password=None,
        time_zone="W. Europe Standard Time",
        room={
            "capacity": capacity,
            "building": "HQ",
            "floorNumber": floor,
            "floorLabel": str(floor),
            "label": f"{name} ({capacity})",
            "nickname": name,
            "address": dict(HQ_ADDRESS),
            "geoCoordinates": {"latitude": 52.3731, "longitude": 4.8922, "accuracy": None, "altitude": None, "altitudeAccuracy": None},
            "phone": "",
            "isWheelChairAccessible": True,
            "bookingType": "standard",
            "tags": [],
            "audioDeviceName": None,
            "videoDeviceName": None,
            "displayDeviceName": None,
            "roomList": f"hq-rooms@{DEMO_DOMAIN}",
        },
    )


def load_demo(store: Store) -> Store:
    store.tenant_id = DEMO_TENANT_ID
    store.tenant_name = DEMO_TENANT_NAME
    store.domain = DEMO_DOMAIN
    for u in (
        _user(f"alice@{DEMO_DOMAIN}", "Alice Anders", "Alice", "Anders", "Engineer"),
        _user(f"bob@{DEMO_DOMAIN}", "Bob Berg", "Bob", "Berg", "Designer"),
        _user(f"admin@{DEMO_DOMAIN}", "Contoso Admin", "Contoso", "Admin", "IT administrator"),
        _user(f"reservations@{DEMO_DOMAIN}", "Room Reservations", None, None, "Service account"),
        # People only the directory knows (no account in the product): the booking form's
        # people picker finds them through Graph's /users?$search.
        _user(f"boris.novak@{DEMO_DOMAIN}", "Boris Novak", "Boris", "Novak", "Facilities"),
        _user(f"carol.chen@{DEMO_DOMAIN}", "Carol Chen", "Carol", "Chen", "Finance"),
        _user(f"dora.diaz@{DEMO_DOMAIN}", "Dora Diaz", "Dora", "Diaz", "Sales"),
        _user(f"evan.oconnor@{DEMO_DOMAIN}", "Evan O'Connor", "Evan", "O'Connor", "Support"),
        _room(f"atlas@{DEMO_DOMAIN}", "Atlas", 8, 1),
        _room(f"borealis@{DEMO_DOMAIN}", "Borealis", 4, 2),
        _room(f"cosmos@{DEMO_DOMAIN}", "Cosmos", 12, 3),
    ):
        store.add_user(u)
    delegate = store.by_upn[f"reservations@{DEMO_DOMAIN}"]
    for u in store.users.values():
        if u.kind == "room":
            store.mailboxes[u.id].delegates = [delegate.id]
    store.apps[DEMO_CLIENT_ID] = App(
        client_id=DEMO_CLIENT_ID,
        secret=DEMO_CLIENT_SECRET,
        display_name="Workplace Space Demo",
        app_roles=list(DEMO_APP_ROLES),
        delegated_scopes=list(DEMO_DELEGATED_SCOPES),
        redirect_uris=[],
    )
    # tenant-wide admin consent for the demo app's delegated scopes
    for u in store.users.values():
        if u.kind == "user":
            store.grant_consent(u.id, DEMO_CLIENT_ID, DEMO_DELEGATED_SCOPES)
    return store


def load_empty(store: Store) -> Store:
    store.tenant_id = DEMO_TENANT_ID
    store.tenant_name = DEMO_TENANT_NAME
    store.domain = DEMO_DOMAIN
    return store


# A second tenant, for instances serving two Microsoft 365 tenants (one emulator process per
# tenant, as each tenant is its own directory and Graph endpoint for the product).
FABRIKAM_TENANT_ID = "0b9a7c1d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
FABRIKAM_TENANT_NAME = "fabrikam"
FABRIKAM_DOMAIN = "fabrikam.example"
FABRIKAM_CLIENT_ID = "wsd-fabrikam-client"
FABRIKAM_CLIENT_SECRET = "fabrikam-secret"


def load_fabrikam(store: Store) -> Store:
    """Tenant fabrikam: dana@ (employee), reservations@ (delegated user / organizer account, a
    delegate of the rooms), rooms hudson@ and liberty@; app wsd-fabrikam-client."""
    store.tenant_id = FABRIKAM_TENANT_ID
    store.tenant_name = FABRIKAM_TENANT_NAME
    store.domain = FABRIKAM_DOMAIN
    people = [
        _user(f"dana@{FABRIKAM_DOMAIN}", "Dana Dorn", "Dana", "Dorn", "Engineer"),
        _user(f"reservations@{FABRIKAM_DOMAIN}", "Room Reservations", None, None, "Service account"),
    ]
    rooms = [_room(f"hudson@{FABRIKAM_DOMAIN}", "Hudson", 10, 1), _room(f"liberty@{FABRIKAM_DOMAIN}", "Liberty", 4, 2)]
    for u in people + rooms:
        u.time_zone = "Eastern Standard Time"
        if u.room:
            u.room.update(building="Harbor", roomList=f"harbor-rooms@{FABRIKAM_DOMAIN}")
        store.add_user(u)
    delegate = store.by_upn[f"reservations@{FABRIKAM_DOMAIN}"]
    for u in rooms:
        store.mailboxes[u.id].delegates = [delegate.id]
    store.apps[FABRIKAM_CLIENT_ID] = App(
        client_id=FABRIKAM_CLIENT_ID, secret=FABRIKAM_CLIENT_SECRET, display_name="Workplace Space (Fabrikam)",
        app_roles=list(DEMO_APP_ROLES), delegated_scopes=list(DEMO_DELEGATED_SCOPES), redirect_uris=[],
    )
    for u in people:
        store.grant_consent(u.id, FABRIKAM_CLIENT_ID, DEMO_DELEGATED_SCOPES)
    return store


SEEDS = {"demo": load_demo, "empty": load_empty, "fabrikam": load_fabrikam}


def apply_seed_payload(store: Store, payload: dict) -> dict:
    """Control API: add users, rooms, delegates and apps. Returns what was added."""
    added = {"users": [], "rooms": [], "apps": [], "delegates": []}
    for u in payload.get("users", []):
        upn = u["upn"] if "upn" in u else u["userPrincipalName"]
        user = User(
            id=u.get("id") or stable_guid("user", upn),
            upn=upn,
            display_name=u.get("displayName") or upn.split("@")[0].title(),
            given_name=u.get("givenName"),
            surname=u.get("surname"),
            job_title=u.get("jobTitle"),
            office_location=u.get("officeLocation"),
            password=u.get("password", DEMO_PASSWORD),
            time_zone=u.get("timeZone", "W. Europe Standard Time"),
        )
        if "allowedOnlineMeetingProviders" in u:
            user.allowed_online_meeting_providers = list(u["allowedOnlineMeetingProviders"])
        if "defaultOnlineMeetingProvider" in u:
            user.default_online_meeting_provider = u["defaultOnlineMeetingProvider"]
        store.add_user(user)
        for client_id, app in store.apps.items():
            if u.get("consent", True):
                store.grant_consent(user.id, client_id, app.delegated_scopes)
        added["users"].append(user.id)
    for r in payload.get("rooms", []):
        upn = r["upn"] if "upn" in r else r["emailAddress"]
        room = _room(upn, r.get("displayName") or upn.split("@")[0].title(), int(r.get("capacity", 4)), int(r.get("floorNumber", 1)))
        room.id = r.get("id") or stable_guid("room", upn)
        room.auto_accept = bool(r.get("autoAccept", True))
        room.booking_delegates = [str(d) for d in r.get("bookingDelegates", [])]  # approvals by delegates (see calendar.py)
        for k in ("building", "label", "tags", "bookingType", "floorLabel", "nickname", "phone", "isWheelChairAccessible",
                  "audioDeviceName", "videoDeviceName", "displayDeviceName", "roomList", "roomListName", "address"):
            if k in r:
                room.room[k] = r[k]
        if "timeZone" in r:
            room.time_zone = r["timeZone"]
        store.add_user(room)
        added["rooms"].append(room.id)
        delegates = r.get("delegates")
        if delegates is None:
            delegates = [u.upn for u in store.users.values() if u.upn.startswith("reservations@")]
        delegates = list(delegates) + [d for d in room.booking_delegates if d not in delegates]
        for d in delegates:
            du = store.find_user(d)
            if du and du.id not in store.mailboxes[room.id].delegates:
                store.mailboxes[room.id].delegates.append(du.id)
    for d in payload.get("delegates", []):
        mb_user, du = store.find_user(d["mailbox"]), store.find_user(d["delegate"])
        if mb_user is None or du is None:
            raise KeyError(f"unknown user in delegate entry {d}")
        if du.id not in store.mailboxes[mb_user.id].delegates:
            store.mailboxes[mb_user.id].delegates.append(du.id)
        added["delegates"].append({"mailbox": mb_user.upn, "delegate": du.upn})
    for a in payload.get("apps", []):
        app = App(
            client_id=a["client_id"],
            secret=a.get("secret"),
            display_name=a.get("display_name", a["client_id"]),
            app_roles=list(a.get("app_roles", DEMO_APP_ROLES)),
            delegated_scopes=list(a.get("delegated_scopes", DEMO_DELEGATED_SCOPES)),
            redirect_uris=list(a.get("redirect_uris", [])),
            allow_loopback_redirects=bool(a.get("allow_loopback_redirects", True)),
            allow_public_client=bool(a.get("allow_public_client", True)),
            certificates=[check_certificate(c) for c in a.get("certificates", [])],
            secret_expires_at=float(a["secret_expires_at"]) if a.get("secret_expires_at") is not None else None,
        )
        store.apps[app.client_id] = app
        if a.get("admin_consent", True):
            for u in store.users.values():
                if u.kind == "user":
                    store.grant_consent(u.id, app.client_id, app.delegated_scopes)
        added["apps"].append(app.client_id)
    return added
