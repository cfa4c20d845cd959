from django.core.management.base import BaseCommand, CommandError

from calendar_sync.preflight import preflight_run
from exchange_auth.providers import provider_named


class Command(BaseCommand):
    help = ("Check, for the configured sync mode, everything a Microsoft 365 tenant can lack (permissions, access policy, "
            "delegate access, organizer, webhook, credential expiry), with the fix for each. Non-zero exit on any failed check.")

    def add_arguments(self, parser):
        parser.add_argument("--provider", help="Provider name (default: the default provider).")

    def handle(self, *args, **options):
        provider = provider_named(options["provider"])
        if provider is None:
            raise CommandError("No such calendar provider (and none is active).")
        result = preflight_run(provider)
        self.stdout.write(f"Preflight of {provider.name} ({result.mode} mode):")
        for check in result.checks:
            style = {"ok": self.style.SUCCESS, "warn": self.style.WARNING, "fail": self.style.ERROR}[check.status]
            self.stdout.write(style(f"{check.symbol} {check.name}: {check.detail}"))
            if check.fix:
                self.stdout.write(f"    fix: {check.fix}")
        failed = [c for c in result.checks if c.status == "fail"]
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}.")
        self.stdout.write(self.style.SUCCESS("Every check passed." if all(c.status == "ok" for c in result.checks)
                                             else "No check failed (see the warnings)."))
