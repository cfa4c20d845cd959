"""The providers' reads written by hand for PostgreSQL (exchange_auth.providers._provider_sql)
find the provider the ORM's queries find, built as the ORM builds it."""

import pytest
from django.db import connection

from exchange_auth import providers
from exchange_auth.models import CalendarProvider
from tests.exchange_auth.conftest import make_provider

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the hand-written reads are PostgreSQL's"),
]

HOST = "https://login.example.invalid"


def values(provider):
    return None if provider is None else {f.attname: getattr(provider, f.attname) for f in CalendarProvider._meta.concrete_fields}


def orm_default():
    return CalendarProvider.objects.filter(active=True).order_by("-is_default", "name").first()


def test_the_default_provider_is_the_orms():
    assert providers.default_provider() is None and orm_default() is None
    make_provider(HOST, name="Zeta")
    alpha = make_provider(HOST, name="Alpha", client_secret="alpha-secret")
    make_provider(HOST, name="Aardvark", active=False)
    assert values(providers.default_provider()) == values(orm_default()) == values(alpha)  # the first active by name
    beta = make_provider(HOST, name="Beta", is_default=True)
    found = providers.default_provider()
    assert values(found) == values(orm_default()) == values(beta)  # the flagged default first
    assert not found._state.adding and found.client_secret == "demo-secret"  # a usable instance: its secret decrypts
    assert providers.default_provider().client_secret_expires_on is None


def test_a_buildings_provider_is_the_orms():
    default = make_provider(HOST, name="Default", is_default=True)
    own = make_provider(HOST, name="Own")
    off = make_provider(HOST, name="Off", active=False)

    class Building:
        calendar_provider_id = None

    building = Building()
    for named, expected in ((own.pk, own), (off.pk, default), (None, default), (own.pk + 1000, default)):
        building.calendar_provider_id = named
        orm = CalendarProvider.objects.filter(pk=named, active=True).first() if named else None
        assert values(providers.provider_for_building(building)) == values(orm or orm_default()) == values(expected), named
