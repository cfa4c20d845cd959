"""``manage.py revoke_api_token alice --name kiosk``: the person's tokens of that name
stop working at once (deleted). Admin → API tokens does the same one by one."""

from django.core.management.base import BaseCommand, CommandError

from workplace.models import ApiToken


class Command(BaseCommand):
    help = "Revoke (delete) a user's REST API tokens of one name, or all of them with --all."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default=None)
        parser.add_argument("--all", action="store_true", help="Every token of the user.")

    def handle(self, *args, username, name, all, **options):  # noqa: A002 (the option's name)
        if name is None and not all:
            raise CommandError("Give --name NAME or --all.")
        tokens = ApiToken.objects.filter(user__username=username)
        if name is not None:
            tokens = tokens.filter(name=name)
        count, _ = tokens.delete()
        self.stdout.write(f"Revoked {count} token(s) of {username}.")
