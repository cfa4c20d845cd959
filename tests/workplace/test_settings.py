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
    assert database["OPTIONS"] == {"sslmode": "require"}


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
