"""When the app-only credential (client secret or certificate) stops working, and the admins'
warnings 30 and 7 days before (and once it has expired).

The certificate's expiry is read from the certificate itself; a secret's only Entra ID knows,
so the admin records it with the secret (``client_secret_expires_on``). Each warning goes once
per credential and threshold (``credential_expiry_warned`` remembers the last one sent).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import mail_admins, send_mail
from django.utils import timezone

from exchange_auth.models import CalendarProvider

logger = logging.getLogger("exchange_auth.expiry")

WARN_DAYS = (30, 7)


@dataclass(frozen=True)
class Expiry:
    kind: str  # "certificate" | "client secret"
    identity: str  # the certificate's thumbprint, or the secret's recorded expiry date
    expires_at: dt.datetime | None  # None: a secret whose expiry nobody recorded

    def days_left(self, now: dt.datetime | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return (self.expires_at - (now or timezone.now())).total_seconds() / 86400

    def threshold(self, now: dt.datetime | None = None) -> int | None:
        """0 once expired, else the smallest of WARN_DAYS it is within, else None."""
        left = self.days_left(now)
        if left is None:
            return None
        if left <= 0:
            return 0
        within = [days for days in WARN_DAYS if left <= days]
        return min(within) if within else None

    def sentence(self, now: dt.datetime | None = None) -> str:
        if self.expires_at is None:
            return f"The {self.kind}'s expiry date is not recorded."
        left = self.days_left(now)
        when = f"{self.expires_at:%Y-%m-%d %H:%M} UTC"
        if left <= 0:
            return f"The {self.kind} expired on {when}: app-only tokens are refused (AADSTS7000222 for a secret, AADSTS700027 for a certificate)."
        return f"The {self.kind} expires on {when}, in {int(left)} day(s)."

    @property
    def fix(self) -> str:
        if self.kind == "certificate":
            return ("Make a new certificate, upload its public part under the app registration's Certificates & secrets, "
                    "and upload the PEM (certificate + key) in the calendar provider.")
        return ("Create a new client secret under the app registration's Certificates & secrets and enter it with its "
                "expiry date in the calendar provider (or switch to a certificate).")


def credential_expiry(provider: CalendarProvider) -> Expiry:
    """The expiry of the credential app-only tokens are acquired with (the certificate when stored)."""
    if provider.has_client_certificate:
        return Expiry("certificate", provider.client_certificate_thumbprint, provider.client_certificate_expires_at)
    expires_on = provider.client_secret_expires_on
    if expires_on is None:
        return Expiry("client secret", "", None)
    at = dt.datetime.combine(expires_on, dt.time(0, 0), tzinfo=dt.UTC)
    return Expiry("client secret", expires_on.isoformat(), at)


def credential_expiry_warn(*, now: dt.datetime | None = None) -> int:
    """Tell the admins about each active provider's credential at 30 and 7 days and once expired,
    each once. Returns how many warnings went out (the beat task runs this daily)."""
    sent = 0
    for provider in CalendarProvider.objects.filter(active=True):
        expiry = credential_expiry(provider)
        threshold = expiry.threshold(now)
        if threshold is None:
            continue
        key = f"{expiry.kind}:{expiry.identity}:{threshold}"
        if provider.credential_expiry_warned == key:
            continue
        # Claim the warning first (a conditional UPDATE), so two beat runs send it once.
        claimed = CalendarProvider.objects.filter(pk=provider.pk, credential_expiry_warned=provider.credential_expiry_warned).update(
            credential_expiry_warned=key)
        if not claimed:
            continue
        subject = (f"The {expiry.kind} of calendar provider {provider.name} has expired" if threshold == 0
                   else f"The {expiry.kind} of calendar provider {provider.name} expires in {int(expiry.days_left(now))} day(s)")
        body = f"{expiry.sentence(now)}\n\nHow to fix it: {expiry.fix}\n\nCheck the result with the provider's preflight in the admin."
        _tell_admins(subject, body)
        sent += 1
    return sent


def _tell_admins(subject: str, body: str) -> None:
    try:
        mail_admins(subject, body, fail_silently=True)
        staff = sorted(set(get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True)))
        if staff:
            send_mail(f"[Workplace] {subject}", body, settings.DEFAULT_FROM_EMAIL, staff, fail_silently=True)
    except Exception:
        logger.exception("could not tell the admins: %s", subject)
