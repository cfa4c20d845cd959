"""The demo tenant's calendar provider, pointing at the local emulator (used by seed_demo)."""

from django.conf import settings
from django.db import transaction

from exchange_auth.models import CalendarProvider

DEMO_PROVIDER_NAME = "Contoso (emulator)"


@transaction.atomic
def seed_provider() -> CalendarProvider:
    """Create or refresh the demo provider; idempotent. Another active provider is left inactive."""
    base = settings.GRAPH_EMULATOR_URL.rstrip("/")
    provider = CalendarProvider.objects.select_for_update().filter(name=DEMO_PROVIDER_NAME).first()
    if provider is None:
        provider = CalendarProvider(name=DEMO_PROVIDER_NAME)
    provider.tenant_id = "contoso"
    provider.client_id = "wsd-demo-client"
    if provider.client_secret != "demo-secret":
        provider.client_secret = "demo-secret"
    provider.authority_host = base
    provider.graph_base_url = f"{base}/v1.0"
    provider.delegated_user_email = "reservations@contoso.example"
    provider.organizer_account = "reservations@contoso.example"
    provider.rooms_organize_own_meetings = False
    provider.active = not CalendarProvider.objects.filter(active=True).exclude(pk=provider.pk).exists()
    provider.is_default = provider.active and not CalendarProvider.objects.filter(is_default=True).exclude(pk=provider.pk).exists()
    provider.save()
    return provider
