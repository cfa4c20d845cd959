"""What the product writes into every meeting it creates, so that a copy of it is known for
the product's own even before its link is stored (a worker killed between Graph's 201 and
the link, issue 16 item 8).

1. ``transaction_id``: the create's deterministic ``transactionId`` (Graph keeps it on the
   organizer's event only, never on an attendee's copy:
   https://learn.microsoft.com/en-us/graph/api/resources/event?view=graph-rest-1.0 ,
   "transactionId: A custom identifier specified by a client app for the server to avoid
   redundant POST operations");
2. ``mark``: a string extended property naming the reservation or series, set on every
   meeting the product creates
   (https://learn.microsoft.com/en-us/graph/api/resources/extended-properties-overview?view=graph-rest-1.0).
   Exchange keeps a custom named property on the item it was written to (the organizer's),
   so it is read there, with ``$expand=singleValueExtendedProperties($filter=id eq '…')``
   (https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get?view=graph-rest-1.0).

The room's copy shares the organizer's iCalUId, which is how the organizer's event is found.
"""

from __future__ import annotations

import uuid

# transactionIds are UUID5s in this namespace: the same sync event always sends the same id.
TRANSACTION_NAMESPACE = uuid.UUID("5d0f5c1e-3b7a-4f0e-9c55-0a6b2c9d7e41")

# The product's own property set (a GUID of ours) and the property's name.
PROPERTY_ID = "String {6b1f4e2a-7d3c-4a5e-9f08-2c4d6e8a0b13} Name WorkplaceBooking"

EXPAND_MARK = f"singleValueExtendedProperties($filter=id eq '{PROPERTY_ID}')"


def transaction_id(*, reservation_id: int | None, series_id: int | None, sync_event_id: int, room_mailbox: str) -> str:
    """Deterministic per (reservation or series, sync event, room): a retried or redelivered
    push of the same create sends the same id and Graph returns the meeting it already made;
    a later re-create (room change) is a new sync event and so a new id."""
    key = f"wsd:rsv={reservation_id or ''}:series={series_id or ''}:event={sync_event_id}:room={room_mailbox.lower()}"
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, key))


def mark_value(*, reservation_id: int | None = None, series_id: int | None = None) -> str:
    return f"series:{series_id}" if series_id else f"reservation:{reservation_id}"


def mark(*, reservation_id: int | None = None, series_id: int | None = None) -> list[dict]:
    """``singleValueExtendedProperties`` of a create: which reservation (or series) it is for."""
    return [{"id": PROPERTY_ID, "value": mark_value(reservation_id=reservation_id, series_id=series_id)}]


def mark_in(body: dict) -> str:
    """The mark an event read with ``EXPAND_MARK`` carries ("" none)."""
    for prop in body.get("singleValueExtendedProperties") or []:
        if (prop.get("id") or "").lower() == PROPERTY_ID.lower():
            return prop.get("value") or ""
    return ""
