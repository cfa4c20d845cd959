"""``manage.py sync_calendars [--full] [--room X]``: pull the synced room calendars now.

Without ``--full`` each room gets a delta round from its stored deltaLink; with it,
a full round over the nightly window (past_sync_period_months back, the provider's
future window), as the 02:30 pass does. A progress bar goes to stderr, one summary
line to stdout."""

import sys
import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from calendar_sync import delta
from workplace.models import Room


class Command(BaseCommand):
    help = "Reconcile room calendars with Exchange (delta rounds; --full for the whole sync window)."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="Full round over the sync window (drops the delta tokens).")
        parser.add_argument("--room", action="append", default=[], help="Room name or mailbox (repeatable). Default: every synced room.")

    def handle(self, *args, full: bool, room: list[str], **options):
        rooms = Room.objects.filter(sync_enabled=True).exclude(mailbox="").order_by("building__name", "name")
        if room:
            query = Q()
            for value in room:
                query |= Q(name__iexact=value) | Q(mailbox__iexact=value)
            rooms = rooms.filter(query)
            if not rooms:
                raise CommandError(f"No synced room matches {', '.join(room)}.")
        rooms = list(rooms)
        totals: Counter = Counter()
        started = time.monotonic()
        failed = []
        for index, r in enumerate(rooms, start=1):
            self._progress(index - 1, len(rooms), r.mailbox)
            try:
                result = delta.pull_mailbox(r.mailbox, full=full, nightly=full, wait=60)
            except delta.NoProvider as exc:
                raise CommandError(str(exc)) from exc
            except Exception as exc:  # report and go on with the other rooms
                failed.append(f"{r.mailbox}: {exc}")
                continue
            totals["events"] += result.events
            totals["requests"] += result.requests
            totals.update(result.stats)
        self._progress(len(rooms), len(rooms), "done")
        sys.stderr.write("\n")
        for line in failed:
            self.stderr.write(f"failed {line}")
        changes = {k: v for k, v in sorted(totals.items()) if k not in ("events", "requests")}
        self.stdout.write(
            f"Synced {len(rooms) - len(failed)}/{len(rooms)} room(s) in {time.monotonic() - started:.1f}s: "
            f"{totals['events']} event(s) read with {totals['requests']} Graph request(s); "
            + (", ".join(f"{k} {v}" for k, v in changes.items()) or "no changes")
            + (f"; {len(failed)} failed" if failed else "")
        )

    @staticmethod
    def _progress(done: int, total: int, label: str) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:40]:<40}")
        sys.stderr.flush()
