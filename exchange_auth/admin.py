from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from exchange_auth import certificates, credentials, graph_check, properties, views
from exchange_auth.models import (
    PUBLIC_AUTHORITY_HOST,
    PUBLIC_GRAPH_BASE_URL,
    CalendarProvider,
    InstanceProperty,
    PersonalToken,
)


class CalendarProviderForm(forms.ModelForm):
    # Write-only: the stored secret is never rendered back into the page.
    client_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the stored secret.",
    )
    # Write-only too: the PEM's private key is stored encrypted and never shown back; the thumbprint and expiry are.
    client_certificate = forms.FileField(
        required=False,
        help_text="Instead of a secret: one PEM file with the certificate and its (unencrypted) private key. Upload the "
                  "certificate's public part to the app registration's Certificates & secrets. Leave empty to keep the stored one.",
    )
    remove_client_certificate = forms.BooleanField(required=False, help_text="Remove the stored certificate (the client secret is used).")
    authority_host = forms.URLField(
        assume_scheme="https", initial=PUBLIC_AUTHORITY_HOST, help_text=CalendarProvider._meta.get_field("authority_host").help_text
    )
    graph_base_url = forms.URLField(
        assume_scheme="https", initial=PUBLIC_GRAPH_BASE_URL, help_text=CalendarProvider._meta.get_field("graph_base_url").help_text
    )

    class Meta:
        model = CalendarProvider
        fields = [
            "name", "active", "is_default", "tenant_id", "client_id", "client_secret", "client_secret_expires_on", "authority_host", "graph_base_url",
            "delegated_user_email", "organizer_account", "rooms_organize_own_meetings", "push_rooms_to_exchange",
            "sync_window_past_days", "sync_window_future_days",
        ]

    def clean_client_certificate(self):
        upload = self.cleaned_data.get("client_certificate")
        if not upload:
            return None
        if upload.size > 64 * 1024:
            raise forms.ValidationError("A PEM certificate with its key is a few kilobytes; this file is too large.")
        return certificates.parse_pem(upload.read())

    def clean(self):
        cleaned = super().clean()
        keeps_certificate = self.instance.pk and self.instance.has_client_certificate and not cleaned.get("remove_client_certificate")
        has_secret = cleaned.get("client_secret") or (self.instance.pk and self.instance.has_client_secret)
        if not (has_secret or cleaned.get("client_certificate") or keeps_certificate):
            self.add_error("client_secret", "Enter the app registration's client secret, or upload a certificate.")
        return cleaned

    def save(self, commit=True):
        provider = super().save(commit=False)
        if self.cleaned_data.get("client_secret"):
            provider.client_secret = self.cleaned_data["client_secret"]
        if self.cleaned_data.get("client_certificate"):
            provider.set_client_certificate(self.cleaned_data["client_certificate"])
        elif self.cleaned_data.get("remove_client_certificate"):
            provider.set_client_certificate(None)
        if commit:
            provider.save()
        credentials.forget_cached_apps()
        return provider


@admin.register(CalendarProvider)
class CalendarProviderAdmin(admin.ModelAdmin):
    form = CalendarProviderForm
    list_display = ["name", "active", "is_default", "tenant_id", "client_id", "authority_host", "delegated_status"]
    list_filter = ["active"]
    readonly_fields = ["secret_status", "certificate_status", "delegated_status", "delegated_connected_at", "delegated_last_error", "updated_at"]
    actions = ["test_connection", "connect_delegated_user", "disconnect_delegated_user"]
    fieldsets = [
        (None, {"fields": ["name", "active", "is_default"]}),
        ("App registration", {"fields": ["tenant_id", "client_id", "client_secret", "secret_status", "client_secret_expires_on",
                                         "client_certificate", "remove_client_certificate", "certificate_status",
                                         "authority_host", "graph_base_url"]}),
        ("Accounts", {"fields": ["delegated_user_email", "organizer_account", "rooms_organize_own_meetings",
                                 "delegated_status", "delegated_connected_at", "delegated_last_error"]}),
        ("Room directory", {"fields": ["push_rooms_to_exchange"]}),
        ("Sync window", {"fields": ["sync_window_past_days", "sync_window_future_days"]}),
        (None, {"fields": ["updated_at"]}),
    ]

    def get_urls(self):
        view = self.admin_site.admin_view(self.test_connection_view)
        return [path("<int:object_id>/test-connection/", view, name="exchange_auth_calendarprovider_test_connection"), *super().get_urls()]

    def test_connection_view(self, request, object_id: int):
        """POST from the provider's page: the same check as the list's action, its result as a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        provider = get_object_or_404(CalendarProvider, pk=object_id)
        if self.has_change_permission(request, provider):
            self.test_connection(request, CalendarProvider.objects.filter(pk=provider.pk))
        return HttpResponseRedirect(reverse("admin:exchange_auth_calendarprovider_change", args=[provider.pk]))

    # "Stored secret", not a second "Client secret" beside the write-only input of that name.
    @admin.display(description="Stored secret")
    def secret_status(self, obj: CalendarProvider) -> str:
        if not obj.has_client_secret:
            return "not set"
        return "stored (encrypted)" + (" — not used while a certificate is stored" if obj.has_client_certificate else "")

    @admin.display(description="Certificate")
    def certificate_status(self, obj: CalendarProvider) -> str:
        if not obj.has_client_certificate:
            return "none (the client secret is used)"
        return (f"thumbprint {obj.client_certificate_thumbprint}, expires {obj.client_certificate_expires_at:%Y-%m-%d %H:%M} UTC"
                " — used instead of the client secret; private key stored encrypted")

    @admin.display(description="Delegated user")
    def delegated_status(self, obj: CalendarProvider) -> str:
        if obj.delegated_connected:
            return f"connected as {obj.delegated_connected_as}" + (" — last refresh failed" if obj.delegated_last_error else "")
        if obj.pk:
            return "not connected — select it and run “Connect delegated user”"
        return "not connected"

    @admin.action(description="Test connection (app-only token + list rooms)")
    def test_connection(self, request, queryset):
        for provider in queryset:
            report = graph_check.test_connection(provider)
            level = messages.SUCCESS if report.ok else messages.ERROR
            self.message_user(request, f"{provider.name}: {report.message}", level)

    @admin.action(description="Connect delegated user (sign in as the service account)")
    def connect_delegated_user(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one provider to connect its delegated user.", messages.WARNING)
            return None
        return views.begin_delegated_sign_in(request, queryset.get())

    @admin.action(description="Disconnect delegated user")
    def disconnect_delegated_user(self, request, queryset):
        for provider in queryset:
            credentials.disconnect_delegated_user(provider)
        self.message_user(request, "Delegated user disconnected; app-only credentials are used.", messages.SUCCESS)


class InstancePropertyForm(forms.ModelForm):
    """Validates the value by the property's type, with the sentence the spec gives."""

    class Meta:
        model = InstanceProperty
        fields = ["name", "value"]
        widgets = {"value": forms.TextInput(attrs={"size": 40})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"] = forms.ChoiceField(choices=[(name, name) for name in properties.SPECS])
        if self.instance.pk:
            self.fields["name"].disabled = True
            spec = properties.SPECS.get(self.instance.name)
            if spec is not None:
                self.fields["value"].help_text = _help(spec)

    def clean_value(self):
        name = self.cleaned_data.get("name") or self.instance.name
        spec = properties.SPECS.get(name)
        if spec is None:
            return self.cleaned_data["value"]
        return spec.serialize(spec.parse(self.cleaned_data["value"]))


def _help(spec: properties.PropertySpec) -> str:
    kinds = {"choice": "one of " + ", ".join(spec.choices), "int": "a whole number", "bool": "true or false",
             "email": "an email address, or empty"}
    return f"{spec.description} Type: {kinds[spec.type]}. Default: {spec.serialize(spec.default) or '(empty)'}."


@admin.register(InstanceProperty)
class InstancePropertyAdmin(admin.ModelAdmin):
    form = InstancePropertyForm
    list_display = ["name", "value", "typed_default", "updated_at"]
    search_fields = ["name"]

    @admin.display(description="Default")
    def typed_default(self, obj: InstanceProperty) -> str:
        spec = properties.SPECS.get(obj.name)
        return spec.serialize(spec.default) if spec else "—"


@admin.register(PersonalToken)
class PersonalTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "account_email", "provider", "connected_at", "refreshed_at", "needs_reconnect"]
    list_filter = ["needs_reconnect", "provider"]
    search_fields = ["user__username", "account_email"]
    list_select_related = ["user", "provider"]
    fields = ["user", "provider", "account_email", "connected_at", "refreshed_at", "needs_reconnect", "last_error"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # employees connect themselves from the portal
