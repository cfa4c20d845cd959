"""Settings from the environment: the SQLite stand-in for the exclusion constraint,
and bad values failing loudly with the variable's name."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from settings.env import database_from_url, env_bool, env_int


def test_sqlite_writers_take_the_lock_up_front():
    database = database_from_url("DATABASE_URL", "sqlite:////tmp/x.sqlite3")
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == "/tmp/x.sqlite3"
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_postgres_url():
    database = database_from_url("DATABASE_URL", "postgres://u:p%40ss@db:5433/wp?sslmode=require")
    assert (database["NAME"], database["USER"], database["PASSWORD"], database["HOST"], database["PORT"]) == ("wp", "u", "p@ss", "db", "5433")
    assert database["OPTIONS"] == {"sslmode": "require", "server_side_binding": True, "prepare_threshold": 5}


@pytest.mark.parametrize(("query", "binding", "threshold"), [
    ("?prepare_threshold=off", True, None),
    ("?prepare_threshold=0", True, 0),
    ("?server_side_binding=false&prepare_threshold=12", False, 12),
])
def test_prepared_statements_can_be_tuned_or_turned_off(query, binding, threshold):
    options = database_from_url("DATABASE_URL", f"postgres://db/wp{query}")["OPTIONS"]
    assert (options["server_side_binding"], options["prepare_threshold"]) == (binding, threshold)


@pytest.mark.parametrize("query", ["?prepare_threshold=often", "?server_side_binding=maybe", "?prepare_threshold=-1"])
def test_bad_prepared_statement_options_name_the_variable(query):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_from_url("DATABASE_URL", f"postgres://db/wp{query}")


@pytest.mark.django_db
def test_the_database_keeps_prepared_statements():
    """What the settings ask for is what the connection does: a statement run often enough
    is prepared once and then executed without being parsed and planned again."""
    from django.db import connection

    from workplace.models import Building

    for _ in range(connection.settings_dict["OPTIONS"]["prepare_threshold"] + 1):
        Building.objects.filter(code="HQ").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert any('"workplace_building"' in statement for statement in statements)


@pytest.mark.parametrize("url", ["mysql://x/y", "postgres://host", "sqlite://"])
def test_bad_database_urls_name_the_variable(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_from_url("DATABASE_URL", url)


def test_bad_numbers_and_booleans_name_the_variable(monkeypatch):
    monkeypatch.setenv("RESERVATION_MAX_OCCURRENCES", "many")
    monkeypatch.setenv("DEBUG", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="RESERVATION_MAX_OCCURRENCES"):
        env_int("RESERVATION_MAX_OCCURRENCES", 200)
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        env_bool("DEBUG")


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["vendor"] == "postgresql"
    assert body["checks"]["broker"]["ok"]
