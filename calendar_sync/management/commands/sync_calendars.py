"""``manage.py sync_calendars [--full] [--room X]``: pull the synced calendars now.

Without ``--full`` each mailbox gets a delta round from its stored deltaLink; with it,
a full round over the nightly window (past_sync_period_months back, the provider's
future window), as the 02:30 pass does. Without ``--room`` that is every synced room
and every organizer mailbox (the provider's service account where the mode makes it
organize, ``mailboxes.organizer_mailboxes``), as the nightly pass covers them; with
``--room`` only those rooms. A progress bar goes to stderr (the command's, so tests can read it), one summary line to stdout."""

import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from calendar_sync.inbound import delta, nightly
from workplace.models import Room


def _plain(text: str) -> str:
    return text  # the progress bar is not an error: no error colour on a terminal


class Command(BaseCommand):
    help = "Reconcile room and organizer calendars with Exchange (delta rounds; --full for the whole sync window)."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="Full round over the sync window (drops the delta tokens).")
        parser.add_argument("--room", action="append", default=[],
                            help="Room name or mailbox (repeatable). Default: every synced room and the organizer mailboxes.")

    def handle(self, *args, full: bool, room: list[str], **options):
        rooms = Room.objects.filter(sync_enabled=True).exclude(mailbox="").order_by("building__name", "name")
        if room:
            query = Q()
            for value in room:
                query |= Q(name__iexact=value) | Q(mailbox__iexact=value)
            rooms = rooms.filter(query)
            if not rooms:
                raise CommandError(f"No synced room matches {', '.join(room)}.")
        room_mailboxes = [r.mailbox for r in rooms]
        organizers = [] if room else [m for m in nightly.organizer_mailboxes() if m not in {r.lower() for r in room_mailboxes}]
        todo = [(m, m) for m in room_mailboxes] + [(m, f"{m} (organizer)") for m in organizers]
        totals: Counter = Counter()
        started = time.monotonic()
        failed: dict[str, str] = {}
        for index, (mailbox, label) in enumerate(todo, start=1):
            self._progress(index - 1, len(todo), label)
            try:
                result = delta.pull_mailbox(mailbox, full=full, nightly=full, wait=60)
            except delta.NoProvider as exc:
                raise CommandError(str(exc)) from exc
            except Exception as exc:  # report and go on with the other mailboxes
                failed[mailbox] = str(exc)
                continue
            totals["events"] += result.events
            totals["requests"] += result.requests
            totals.update(result.stats)
        self._progress(len(todo), len(todo), "done")
        self.stderr.write("", style_func=_plain)
        for mailbox, error in failed.items():
            self.stderr.write(f"failed {mailbox}: {error}")
        changes = {k: v for k, v in sorted(totals.items()) if k not in ("events", "requests")}
        rooms_ok = sum(1 for m in room_mailboxes if m not in failed)
        synced = f"{rooms_ok}/{len(room_mailboxes)} room(s)"
        if organizers:
            organizers_ok = sum(1 for m in organizers if m not in failed)
            synced += f" and {organizers_ok}/{len(organizers)} organizer mailbox(es) ({', '.join(organizers)})"
        self.stdout.write(
            f"Synced {synced} in {time.monotonic() - started:.1f}s: "
            f"{totals['events']} event(s) read with {totals['requests']} Graph request(s); "
            + (", ".join(f"{k} {v}" for k, v in changes.items()) or "no changes")
            + (f"; {len(failed)} failed" if failed else "")
        )

    def _progress(self, done: int, total: int, label: str) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        self.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:50]:<50}", style_func=_plain, ending="")
        self.stderr.flush()
