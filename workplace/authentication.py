"""API authentication."""

import functools

from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions


@functools.cache
def _token_with_user_sql(token_model, vendor: str, alias: str) -> tuple[str, tuple, tuple]:
    """One join, token and its user, written once from the models' metadata."""
    quote = connections[alias].ops.quote_name
    user_field = token_model._meta.get_field("user")
    user_model = user_field.related_model
    token_fields, user_fields = tuple(token_model._meta.concrete_fields), tuple(user_model._meta.concrete_fields)
    columns = [f"t.{quote(f.column)}" for f in token_fields] + [f"u.{quote(f.column)}" for f in user_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(token_model._meta.db_table)} t "  # noqa: S608 (identifiers from metadata)
        f"JOIN {quote(user_model._meta.db_table)} u ON u.{quote(user_field.target_field.column)} = t.{quote(user_field.column)} "
        f"WHERE t.{quote(token_model._meta.get_field('key').column)} = %s"
    )
    return sql, token_fields, user_fields


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication (``Authorization: Token <key>``), same answers and errors,
    with the token+user lookup as one prepared join instead of an ORM query compiled on
    every API request (``select_related("user").get(key=...)``: most of a request's
    authentication cost). Nothing is cached: a deleted token or a deactivated user is
    refused on the very next request."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        alias = router.db_for_read(model)
        connection = connections[alias]
        sql, token_fields, user_fields = _token_with_user_sql(model, connection.vendor, alias)
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        split = len(token_fields)
        token = model.from_db(alias, [f.attname for f in token_fields], row[:split])
        user_model = type(token)._meta.get_field("user").related_model
        token.user = user_model.from_db(alias, [f.attname for f in user_fields], row[split:])
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
