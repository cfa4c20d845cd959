"""``manage.py sync_rooms [--provider NAME]``: import and refresh rooms and room lists from
Exchange's room directory (Graph places) now — what the nightly job and the admin action do.

New rooms arrive with sync off; changed rooms are updated except the fields an admin set by
hand; rooms gone from Exchange are flagged. With the provider's "push rooms to Exchange" the
product's capacity, equipment and floor are written back. A progress bar goes to stderr, a
summary per provider to stdout."""

from django.core.management.base import BaseCommand, CommandError

from calendar_sync.directory.rooms import DirectoryError, import_rooms
from exchange_auth.providers import active_providers, provider_named


def _plain(text: str) -> str:
    return text


class Command(BaseCommand):
    help = "Import rooms and room lists from Exchange (Graph places) for every active provider, or --provider NAME."

    def add_arguments(self, parser):
        parser.add_argument("--provider", default=None, help="The calendar provider's name. Default: every active provider.")

    def handle(self, *args, provider: str | None, **options):
        if provider:
            found = provider_named(provider)
            if found is None:
                raise CommandError(f"No calendar provider is named {provider!r}.")
            providers = [found]
        else:
            providers = active_providers()
            if not providers:
                raise CommandError("No calendar provider is active.")
        failed = 0
        for each in providers:
            try:
                run, result = import_rooms(each, trigger="command", progress=lambda text, p=each: self._note(p, text),
                                           room_progress=self._progress)
            except DirectoryError as exc:
                self.stderr.write("", style_func=_plain)
                self.stderr.write(f"{each.name}: room import failed: {exc}")
                failed += 1
                continue
            self.stderr.write("", style_func=_plain)
            self.stdout.write(f"{each.name}: {result.summary()}")
            for mailbox, why in result.push_refused.items():
                self.stdout.write(f"  push refused for {mailbox}: {why}")
        if failed:
            raise CommandError(f"{failed} of {len(providers)} provider(s) failed.")

    def _note(self, provider, text: str) -> None:
        self.stderr.write(f"\r{provider.name}: {text[:70]:<70}", style_func=_plain, ending="")
        self.stderr.flush()

    def _progress(self, done: int, total: int, label: str) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        self.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:40]:<40}", style_func=_plain, ending="")
        self.stderr.flush()
