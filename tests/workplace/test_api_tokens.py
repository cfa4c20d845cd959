"""REST API tokens (issue 13, item 11): hashed at rest (django-rest-knox), named per client,
revocable, optionally expiring, listed in admin, created by ``manage.py create_api_token``."""

import datetime as dt
import importlib
import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from workplace.models import ApiToken

pytestmark = pytest.mark.django_db


def me(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/me/")


def create(username: str, *args: str) -> str:
    out = io.StringIO()
    call_command("create_api_token", username, *args, stdout=out)
    return out.getvalue().strip()


def test_a_token_made_by_the_command_works_and_only_its_digest_is_stored(alice):
    token = create("alice", "--name", "kiosk")
    response = me(token)
    assert response.status_code == 200 and response.json()["user"] == "alice"
    row = ApiToken.objects.get(user=alice)
    assert row.name == "kiosk" and row.expiry is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM workplace_apitoken")
        assert all(token not in str(value) for value in cursor.fetchone())


def test_each_client_of_a_person_gets_its_own_token(alice):
    kiosk, integration = create("alice", "--name", "kiosk"), create("alice", "--name", "ServiceNow")
    assert kiosk != integration
    assert me(kiosk).status_code == me(integration).status_code == 200
    assert sorted(ApiToken.objects.filter(user=alice).values_list("name", flat=True)) == ["ServiceNow", "kiosk"]


def test_a_revoked_token_is_refused_at_once_and_the_others_keep_working(alice):
    kiosk, integration = create("alice", "--name", "kiosk"), create("alice", "--name", "ServiceNow")
    call_command("revoke_api_token", "alice", "--name", "kiosk", stdout=io.StringIO())
    assert me(kiosk).status_code == 401
    assert me(integration).status_code == 200


def test_an_expired_token_is_refused_and_stays_listed(alice):
    token = create("alice", "--name", "kiosk", "--expires-days", "30")
    row = ApiToken.objects.get(user=alice)
    assert row.expiry > timezone.now() + dt.timedelta(days=29)
    ApiToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert me(token).status_code == 401
    assert ApiToken.objects.get(pk=row.pk).expired


def test_a_token_that_is_not_utf8_is_a_401(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token \xff\xfe")
    assert client.get("/api/v1/me/").status_code == 401


def test_a_token_for_an_inactive_person_is_refused(alice):
    token = create("alice", "--name", "kiosk")
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert me(token).status_code == 401


def test_the_admin_lists_tokens_by_name_and_shows_a_new_one_once(client, admin, alice):
    create("alice", "--name", "kiosk")
    client.force_login(admin)
    listing = client.get("/admin/workplace/apitoken/")
    assert listing.status_code == 200 and b"kiosk" in listing.content
    response = client.post("/admin/workplace/apitoken/add/", {"user": alice.pk, "name": "wall display", "expiry_0": "", "expiry_1": ""}, follow=True)
    assert response.status_code == 200
    [message] = [str(m) for m in response.context["messages"] if "shown only now" in str(m)]
    token = message.rsplit(" ", 1)[-1]
    assert me(token).status_code == 200
    assert ApiToken.objects.get(name="wall display").user == alice


def test_a_token_made_before_tokens_were_hashed_keeps_working_and_its_plaintext_is_gone(alice):
    migration = importlib.import_module("workplace.migrations.0002_api_token")
    old = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, user_id integer NOT NULL)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [old, alice.pk])

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    migration.hash_plaintext_tokens(apps, editor)
    assert me(old).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
