"""Calendar providers, personal Outlook tokens and instance properties.

Secrets (the client secret, msal token caches) are stored only encrypted
(``exchange_auth.crypto``); the models expose them through properties so the
ciphertext columns are the only thing that reaches the database.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from exchange_auth import crypto, property_specs
from exchange_auth.modes import ProviderAccounts

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
PUBLIC_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"


def _https_origin_or_base(value: str, label: str) -> str:
    value = (value or "").strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise ValidationError(f"The {label} must be an https:// URL (msal and Graph only talk TLS).")
    return value


class CalendarProvider(models.Model):
    """An Exchange Online tenant and the app registration the product uses there."""

    name = models.CharField(max_length=120, unique=True)
    active = models.BooleanField(default=False, help_text="Several providers can be active: each building names its own (else the default one serves it).")
    is_default = models.BooleanField(
        default=False, help_text="Serves the buildings that name no provider (at most one). Without one, the first active provider by name does."
    )
    tenant_id = models.CharField(max_length=120, help_text="Directory (tenant) id or domain, e.g. contoso.onmicrosoft.com.")
    client_id = models.CharField(max_length=120, help_text="Application (client) id of the app registration.")
    client_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    client_secret_expires_on = models.DateField(
        null=True, blank=True, help_text="When the client secret expires (Entra ID shows it under Certificates & secrets): admins are warned 30 and 7 days before."
    )
    # Certificate credential (instead of a secret): the key only encrypted, the certificate's public part as is.
    client_certificate_key_encrypted = models.TextField(blank=True, default="", editable=False)
    client_certificate_pem = models.TextField(blank=True, default="", editable=False)
    client_certificate_thumbprint = models.CharField(max_length=40, blank=True, default="", editable=False)
    client_certificate_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The last expiry warning the admins got ("kind:identity:days"), so each goes once (exchange_auth.expiry).
    credential_expiry_warned = models.CharField(max_length=120, blank=True, default="", editable=False)
    authority_host = models.URLField(default=PUBLIC_AUTHORITY_HOST, help_text="Microsoft Entra host; the emulator's in development.")
    graph_base_url = models.URLField(default=PUBLIC_GRAPH_BASE_URL, help_text="Microsoft Graph base URL including the version.")
    delegated_user_email = models.EmailField(
        blank=True, default="", help_text="Service account that is a delegate on the room mailboxes (connect it with the admin action)."
    )
    organizer_account = models.EmailField(
        blank=True, default="", help_text="Organizes meetings for people without a mailbox and, in Strict mode, for rooms that don't."
    )
    rooms_organize_own_meetings = models.BooleanField(
        default=False, help_text="Strict mode: rooms with a mailbox organize the meetings booked in them."
    )
    push_rooms_to_exchange = models.BooleanField(
        default=False, verbose_name="push rooms to Exchange",
        help_text="Room imports write the product's capacity, equipment and floor back to Exchange's room directory "
                  "(PATCH /places/{id}; the app needs the Place.ReadWrite.All application permission), so Outlook's "
                  "Room Finder shows the same.",
    )
    sync_window_past_days = models.PositiveIntegerField(default=60, help_text="Days back the full resync covers.")
    sync_window_future_days = models.PositiveIntegerField(default=365, help_text="Days ahead the full resync covers.")
    # The delegated user's msal token cache (refresh token included), encrypted.
    delegated_token_cache_encrypted = models.TextField(blank=True, default="", editable=False)
    delegated_connected_as = models.EmailField(blank=True, default="", editable=False)
    delegated_connected_at = models.DateTimeField(null=True, blank=True, editable=False)
    delegated_last_error = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-active", "name"]
        constraints = [
            # providers.default_provider() relies on there being at most one default.
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="calendarprovider_one_default"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (active)' if self.active else ''}{' (default)' if self.is_default else ''}"

    def __repr__(self) -> str:  # never the secret
        return f"<CalendarProvider {self.pk} {self.name!r} tenant={self.tenant_id!r}>"

    # --- secrets ----------------------------------------------------------
    @property
    def client_secret(self) -> str:
        return crypto.decrypt(self.client_secret_encrypted)

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self.client_secret_encrypted = crypto.encrypt(value or "")

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_encrypted)

    @property
    def client_certificate_key(self) -> str:
        return crypto.decrypt(self.client_certificate_key_encrypted)

    @property
    def has_client_certificate(self) -> bool:
        return bool(self.client_certificate_key_encrypted and self.client_certificate_thumbprint)

    def set_client_certificate(self, parsed) -> None:
        """Store a checked certificate (``certificates.ParsedCertificate``); None removes it."""
        self.client_certificate_key_encrypted = crypto.encrypt(parsed.private_key_pem) if parsed else ""
        self.client_certificate_pem = parsed.certificate_pem if parsed else ""
        self.client_certificate_thumbprint = parsed.thumbprint if parsed else ""
        self.client_certificate_expires_at = parsed.not_after if parsed else None

    @property
    def delegated_token_cache(self) -> str:
        return crypto.decrypt(self.delegated_token_cache_encrypted)

    @delegated_token_cache.setter
    def delegated_token_cache(self, value: str) -> None:
        self.delegated_token_cache_encrypted = crypto.encrypt(value or "")

    @property
    def delegated_connected(self) -> bool:
        return bool(self.delegated_token_cache_encrypted)

    # --- derived ------------------------------------------------------------
    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def graph_origin(self) -> str:
        parts = urlsplit(self.graph_base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def accounts(self) -> ProviderAccounts:
        """What the mode table needs from this provider."""
        return ProviderAccounts(
            delegated_user=self.delegated_user_email,
            organizer_account=self.organizer_account,
            rooms_organize=self.rooms_organize_own_meetings,
        )

    def clean(self) -> None:
        errors = {}
        for field_name, label in (("authority_host", "authority host"), ("graph_base_url", "Graph base URL")):
            try:
                setattr(self, field_name, _https_origin_or_base(getattr(self, field_name), label))
            except ValidationError as exc:
                errors[field_name] = exc.messages
        for field_name in ("delegated_user_email", "organizer_account"):
            setattr(self, field_name, (getattr(self, field_name) or "").strip().lower())
        self.tenant_id = (self.tenant_id or "").strip()
        self.client_id = (self.client_id or "").strip()
        if self.is_default and CalendarProvider.objects.filter(is_default=True).exclude(pk=self.pk).exists():
            errors["is_default"] = ["Another calendar provider is the default; unflag it first (only one can be the default)."]
        if errors:
            raise ValidationError(errors)


class PersonalToken(models.Model):
    """An employee's own Outlook connection (Personal mode): their msal cache, encrypted."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="outlook_tokens")
    provider = models.ForeignKey(CalendarProvider, on_delete=models.CASCADE, related_name="personal_tokens")
    account_email = models.EmailField(help_text="The Outlook account the user signed in with.")
    token_cache_encrypted = models.TextField(editable=False)
    connected_at = models.DateTimeField()
    refreshed_at = models.DateTimeField(null=True, blank=True)
    # Set when a silent refresh was refused (revoked consent, expired refresh token):
    # the portal asks the user to reconnect.
    needs_reconnect = models.BooleanField(default=False)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            # personal_token() finds the row by (user, provider).
            models.UniqueConstraint(fields=["user", "provider"], name="personaltoken_one_per_user_provider"),
        ]

    def __str__(self) -> str:
        return f"Outlook connection of {self.user} as {self.account_email}"

    @property
    def token_cache(self) -> str:
        return crypto.decrypt(self.token_cache_encrypted)

    @token_cache.setter
    def token_cache(self, value: str) -> None:
        self.token_cache_encrypted = crypto.encrypt(value or "")


class InstanceProperty(models.Model):
    """The admin's value for one instance property; types and defaults live in ``exchange_auth.property_specs``.

    An edit drops the cached value: ``properties.invalidate_on_edit`` is connected to
    this model's ``post_save`` and ``post_delete`` in ``apps.py``."""

    name = models.CharField(max_length=120, unique=True)
    value = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "instance properties"

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"

    def clean(self) -> None:
        if self.name not in property_specs.SPECS:
            raise ValidationError({"name": f"Unknown property; known: {', '.join(property_specs.SPECS)}."})
        spec = property_specs.spec_for(self.name)
        try:
            self.value = spec.serialize(spec.parse(self.value))
        except ValidationError as exc:
            raise ValidationError({"value": exc.messages}) from None

