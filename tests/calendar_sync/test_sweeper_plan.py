"""The outbox sweeper's query (sweep_sync_events, every minute on a long-lived worker
connection) is planned for its parameters each time: a generic plan walks the whole outbox
by primary key (measured ~2000x slower over 390,000 done events). The worker's connection
prepares statements (settings/env.py PREPARE_THRESHOLD), so after 15 sweeps on one
connection PostgreSQL must not have used a generic plan for it."""

import pytest
from django.db import connection

from calendar_sync.outbound import tasks

pytestmark = pytest.mark.django_db


def sweeper_plans() -> tuple[int, int] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                       "WHERE statement LIKE %s AND statement LIKE %s AND statement LIKE %s",
                       ['SELECT "reservations_syncevent"."id" AS "pk" FROM "reservations_syncevent" WHERE %',
                        '%"reservations_syncevent"."created_at" <= %', '% LIMIT %'])
        row = cursor.fetchone()
    return tuple(row) if row else None


def test_fifteen_sweeps_on_one_connection_never_use_a_generic_plan():
    if connection.vendor != "postgresql" or connection.settings_dict["OPTIONS"].get("prepare_threshold") is None:
        pytest.skip("statements are prepared on PostgreSQL with a prepare threshold only")
    # An outbox of done events (what a live one mostly holds), with planner statistics: here the
    # generic plan's estimate (a quarter of the rows match) makes it look cheaper than the custom one.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO reservations_syncevent (type, state, details, attempts, error, created_at, updated_at, processed_at) "
            "SELECT 'create', 'done', '{}', 0, '', now() - interval '1 day', now(), now() FROM generate_series(1, 5000)",
        )
        cursor.execute("ANALYZE reservations_syncevent")
    for _ in range(15):
        assert tasks.sweep_sync_events() == 0
    plans = sweeper_plans()
    assert plans is not None, "the sweeper's statement was prepared"
    generic, custom = plans
    assert generic == 0 and custom >= 5, plans
