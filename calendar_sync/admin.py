"""Calendar sync's admin (Django discovers this module): the outbox and its processing,
and inbound sync's subscriptions, inbox, delta state, recorded copies and nightly runs."""

from .inbound import admin as inbound_admin  # noqa: F401 - registers its ModelAdmins
from .outbound import admin as outbound_admin  # noqa: F401 - registers its ModelAdmins
