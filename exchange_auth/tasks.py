"""exchange_auth's periodic job: warn the admins before the app's credential expires."""

from celery import shared_task

from exchange_auth.expiry import credential_expiry_warn


@shared_task(name="exchange_auth.tasks.warn_credential_expiry", ignore_result=True)
def warn_credential_expiry() -> int:
    return credential_expiry_warn()
