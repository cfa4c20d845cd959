"""Every changelist of the product's admin costs the same number of queries whatever the number
of rows on the page (issue 17: 2,000 rooms, hundreds of thousands of reservations and sync
events): list_display cells, their related objects and the filters' choices are read with the
page, never once per row.

Each product ModelAdmin has a builder below making ``n`` rows whose related objects (room,
building, person, provider, reservation ...) are all different, so a per-row query shows as
more queries at 60 rows than at 5."""

import datetime as dt
import itertools

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calendar_sync.models import (
    MailboxDeltaState,
    NightlyChunk,
    NightlyRun,
    RoomEvent,
    Subscription,
    WebhookNotification,
)
from exchange_auth.models import CalendarProvider, InstanceProperty, PersonalToken
from reservations import feeds
from reservations.models import CalendarFeed, Reservation, ReservationSeries, SyncEvent
from tests.factories import (
    BuildingFactory,
    EquipmentFactory,
    FloorFactory,
    ReservationFactory,
    RoomFactory,
    UserFactory,
    days_ahead,
)
from workplace.models import ApiToken, Building, Equipment, Floor, Room, RoomImport, RoomPanel
from workplace.panels import room_panel_create

pytestmark = pytest.mark.django_db

# The product's packages: their ModelAdmins are the ones this file holds to the rule (Django's
# Group admin and django-celery-beat's are theirs).
PRODUCT_PACKAGES = ("workplace", "reservations", "calendar_sync", "exchange_auth", "observability")
_serial = itertools.count(1)


def _provider() -> CalendarProvider:
    n = next(_serial)
    return CalendarProvider.objects.create(name=f"Tenant {n}", tenant_id=f"t{n}.example", client_id=f"client-{n}", active=True)


def _room() -> Room:
    """A room in a building and on a floor of its own, with a piece of equipment of its own."""
    building = BuildingFactory()
    return RoomFactory(building=building, floor=FloorFactory(building=building), synced=True, equipment=[EquipmentFactory()])


def _reservation(**kwargs) -> Reservation:
    n = next(_serial)
    return ReservationFactory(room=_room(), start=days_ahead(1 + n % 20, 9), subject=f"Meeting {n}", event_id=f"AAMk{n}", **kwargs)


def _series() -> ReservationSeries:
    room, person = _room(), UserFactory()
    start = days_ahead(2, 9)
    return ReservationSeries.objects.create(room=room, subject=f"Weekly {next(_serial)}", frequency="weekly", count=4, first_start=start,
                                            first_end=start + dt.timedelta(hours=1), timezone=room.building.timezone,
                                            requested_by=person, requested_for=person)


def _buildings(n):
    for i in range(n):
        BuildingFactory(calendar_provider=_provider() if i % 2 else None)


def _rooms(n):
    for _ in range(n):
        _room()


def _room_imports(n):
    for _ in range(n):
        RoomImport.objects.create(provider=_provider(), trigger="nightly", seen=3, new=1)


def _people(n):
    UserFactory.create_batch(n)


def _api_tokens(n):
    for i in range(n):
        ApiToken.objects.create(user=UserFactory(), name=f"kiosk {i}", expiry=None)


def _room_panels(n):
    for i in range(n):
        room_panel_create(room=_room(), name=f"Door tablet {i}")


def _instance_properties(n):
    for _ in range(n):
        InstanceProperty.objects.create(name=f"test.property_{next(_serial)}", value="x")


def _personal_tokens(n):
    for _ in range(n):
        PersonalToken.objects.create(user=UserFactory(), provider=_provider(), account_email=f"p{next(_serial)}@contoso.example",
                                     token_cache_encrypted="-", connected_at=timezone.now())


def _providers(n):
    for _ in range(n):
        _provider()


def _reservations(n):
    for i in range(n):
        _reservation(series=_series() if i % 3 == 0 else None, subsource=f"sub{i}")


def _series_rows(n):
    for _ in range(n):
        _series()


def _feeds(n):
    for i in range(n):
        if i % 2:
            feeds.calendar_feed_rotate(room=_room())
        else:
            feeds.calendar_feed_rotate(user=UserFactory())


def _sync_events(n):
    for i in range(n):
        if i % 4 == 0:
            SyncEvent.objects.create(series=_series(), type=SyncEvent.Type.CREATE)
        else:
            SyncEvent.objects.create(reservation=_reservation(), type=SyncEvent.Type.UPDATE, state=SyncEvent.State.ERROR, error="boom " * 30)


def _subscriptions(n):
    for _ in range(n):
        k = next(_serial)
        Subscription.objects.create(provider=_provider(), mailbox=f"room{k}@contoso.example", resource="/x", graph_id=f"g{k}",
                                    expires_at=timezone.now() + dt.timedelta(days=2))


def _notifications(n):
    for _ in range(n):
        k = next(_serial)
        mailbox = f"room{k}@contoso.example"
        sub = Subscription.objects.create(provider=_provider(), mailbox=mailbox, resource="/x", graph_id=f"n{k}")
        WebhookNotification.objects.create(subscription=sub, subscription_graph_id=sub.graph_id, mailbox=mailbox, change_type="updated")


def _delta_states(n):
    for _ in range(n):
        MailboxDeltaState.objects.create(provider=_provider(), mailbox=f"room{next(_serial)}@contoso.example", pulls=3)


def _room_events(n):
    for i in range(n):
        reservation = _reservation() if i % 2 else None
        k = next(_serial)
        RoomEvent.objects.create(mailbox=f"room{k}@contoso.example", event_id=f"AAMk-{k}", subject="Sync", reservation=reservation,
                                 outcome="created")


def _nightly_runs(n):
    for i in range(n):
        if i % 3 == 0:
            run = NightlyRun.objects.create(mailbox=f"org{next(_serial)}@contoso.example", provider=_provider(), local_date=dt.date(2030, 1, 1))
        else:
            run = NightlyRun.objects.create(building=BuildingFactory(), local_date=dt.date(2030, 1, 1))
        NightlyChunk.objects.create(run=run, index=0, room_ids=[1, 2])


BUILDERS = {
    Building: _buildings, Floor: lambda n: FloorFactory.create_batch(n), Equipment: lambda n: EquipmentFactory.create_batch(n),
    Room: _rooms, RoomImport: _room_imports, get_user_model(): _people, ApiToken: _api_tokens, RoomPanel: _room_panels,
    InstanceProperty: _instance_properties, PersonalToken: _personal_tokens, CalendarProvider: _providers,
    Reservation: _reservations, ReservationSeries: _series_rows, CalendarFeed: _feeds, SyncEvent: _sync_events,
    Subscription: _subscriptions, WebhookNotification: _notifications, MailboxDeltaState: _delta_states, RoomEvent: _room_events,
    NightlyRun: _nightly_runs,
}


def _product_admins() -> list:
    return sorted((model for model, model_admin in admin.site._registry.items() if type(model_admin).__module__.startswith(PRODUCT_PACKAGES)),
                  key=lambda model: model._meta.label)


def test_every_product_admin_has_a_builder_here():
    """A new ModelAdmin is held to the rule too: it needs its builder above."""
    assert set(_product_admins()) == set(BUILDERS)


def _changelist_queries(client, url: str):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries], response


@pytest.mark.parametrize("model", _product_admins(), ids=lambda model: model._meta.label)
def test_a_changelist_costs_the_same_queries_with_5_and_60_rows(client, admin, model):
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    client.force_login(admin)
    BUILDERS[model](5)
    client.get(url)  # warm: the first request of a test reads what later ones find cached (content types ...)
    few, response = _changelist_queries(client, url)
    assert response.context["cl"].result_count >= 5
    BUILDERS[model](55)
    many, response = _changelist_queries(client, url)
    assert response.context["cl"].result_count >= 60
    assert len(response.context["cl"].result_list) >= 60
    assert len(many) == len(few), "\n".join(many)
