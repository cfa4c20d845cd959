"""API authentication: ``Authorization: Token <token>`` checked against the hashed tokens
of ``workplace.ApiToken`` (django-rest-knox; only digests are stored)."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox import auth
from rest_framework import exceptions


class TokenAuthentication(auth.TokenAuthentication):
    """Knox's authentication with two differences: an expired token is refused but kept
    (the admin lists it as expired until someone deletes it; knox would delete it and the
    person's other expired tokens on every request), and a token that isn't UTF-8 is a
    401 like any wrong token, not a server error."""

    def authenticate_credentials(self, token):
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token) -> bool:
        """True when the token may not be used any more."""
        return auth_token.expiry is not None and auth_token.expiry <= timezone.now()


class TokenScheme(OpenApiAuthenticationExtension):
    """The schema's ``tokenAuth``: ``Authorization: Token <token>``, as before the tokens were hashed."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": 'A token from `manage.py create_api_token`, sent as "Token <token>".',
        }
