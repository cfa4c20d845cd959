"""Rebuild the utilization rollup (``reservations_room_day_usage``, migration reservations 0011)
from the reservations in one set-based statement, or (``--check``) compare what the page shows
from it with the straightforward computation for a period, every room, and exit 1 if they
differ. The triggers keep the rollup in step by themselves; this is for an operator who
restored reservations with triggers disabled (``pg_restore --disable-triggers``, a replica
promoted from a logical dump) or wants proof."""

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from reservations.utilization import direct, utilization


class Command(BaseCommand):
    help = "Rebuild the utilization rollup from the reservations, or --check it against them."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="compare instead of rebuilding (exit 1 on a difference)")
        parser.add_argument("--start", type=dt.date.fromisoformat, help="first day checked (default: 366 days ago)")
        parser.add_argument("--end", type=dt.date.fromisoformat, help="last day checked (default: today)")

    def handle(self, *args, check=False, start=None, end=None, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The utilization rollup exists on PostgreSQL only.")
        if not check:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT rsv_usage_rebuild(NULL)")
                cursor.execute("SELECT count(*) FROM reservations_room_day_usage")
                rows = cursor.fetchone()[0]
            self.stdout.write(f"Rebuilt the utilization rollup: {rows} room-days.")
            return
        end = end or timezone.localdate()
        start = start or end - dt.timedelta(days=366)
        fast, slow = utilization(start=start, end=end), direct(start=start, end=end)
        if fast != slow:
            differing = [a.name for a, b in zip(fast.rooms, slow.rooms, strict=True) if a != b]
            self.stderr.write(f"The rollup differs from the reservations for {start}..{end}: rooms {', '.join(differing[:20]) or '—'}"
                              f"{'' if fast.heatmap == slow.heatmap else ' and the heatmap'}. Run rebuild_utilization.")
            sys.exit(1)
        self.stdout.write(f"The rollup and the reservations give equal figures for {start}..{end}.")
