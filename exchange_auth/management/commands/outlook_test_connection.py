from django.core.management.base import BaseCommand, CommandError

from exchange_auth import graph_check
from exchange_auth.providers import provider_named


class Command(BaseCommand):
    help = "Acquire an app-only token for a calendar provider and list its rooms (the admin's 'Test connection')."

    def add_arguments(self, parser):
        parser.add_argument("--provider", help="Provider name (default: the default provider).")

    def handle(self, *args, **options):
        provider = provider_named(options["provider"])
        if provider is None:
            raise CommandError("No such calendar provider (and none is active).")
        report = graph_check.test_connection(provider)
        if not report.ok:
            raise CommandError(f"{provider.name}: {report.message}")
        self.stdout.write(self.style.SUCCESS(f"{provider.name}: {report.message}"))
        self.stdout.write("For everything the tenant must allow (permissions, access policy, delegates, webhook, expiry): manage.py outlook_preflight")
