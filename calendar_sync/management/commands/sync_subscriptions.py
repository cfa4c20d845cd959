"""``manage.py sync_subscriptions``: every synced room mailbox, and the organizer mailbox where
the mode needs it (``calendar_sync.inbound.subscriptions``), gets a live change-notification
subscription (created, renewed, or deleted for mailboxes no longer wanted); one that can't be
subscribed is listed as polled, with the reason."""

from django.core.management.base import BaseCommand, CommandError

from calendar_sync.inbound.admin import polling_health
from calendar_sync.inbound.subscriptions import notification_url
from calendar_sync.inbound.tasks import subscriptions_ensure
from calendar_sync.models import Subscription
from exchange_auth.providers import active_providers


class Command(BaseCommand):
    help = "Create, renew or delete change-notification subscriptions on the synced room mailboxes and the organizer mailbox."

    def handle(self, *args, **options):
        providers = active_providers()
        if not providers:
            raise CommandError("No calendar provider is active.")
        self.stdout.write(f"Notifications go to {notification_url()}")
        counts = subscriptions_ensure()  # every active provider, each in its own tenant
        for sub in Subscription.objects.filter(provider__in=providers, status__in=[Subscription.Status.ACTIVE, Subscription.Status.POLLING]):
            if sub.status == Subscription.Status.POLLING:
                self.stdout.write(f"  {sub.mailbox} ({sub.get_kind_display()}): {polling_health(sub)}")
            else:
                self.stdout.write(f"  {sub.mailbox} ({sub.get_kind_display()}): expires {sub.expires_at:%Y-%m-%d %H:%M} UTC"
                                  f" ({sub.get_credential_display()})")
        self.stdout.write(", ".join(f"{k} {v}" for k, v in counts.items()))
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} subscription(s) failed; see the admin (Calendar sync → Subscriptions).")
