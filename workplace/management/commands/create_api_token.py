"""``manage.py create_api_token alice --name kiosk [--expires-days 90]``: a new API token
for a person's client. Prints the token (only now: the database keeps its digest)."""

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from workplace.models import ApiToken


class Command(BaseCommand):
    help = "Create a named REST API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="Which client uses it, e.g. 'kiosk' or 'ServiceNow' (default: 'api').")
        parser.add_argument("--expires-days", type=int, default=None, help="Days until it stops working (default: never).")

    def handle(self, *args, username, name, expires_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.is_active:
            raise CommandError(f"{username!r} is not active: a token for them would be refused.")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be 1 or more.")
        expiry = dt.timedelta(days=expires_days) if expires_days else None
        _, token = ApiToken.objects.create(user=user, expiry=expiry, name=(name or "api")[:100])
        self.stdout.write(token)
