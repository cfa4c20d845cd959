"""The create serializer's fields are shallow copies of the declared ones (FreshFieldsMixin):
validating must leave the declared fields, and everything the copies share with them, as
they were, and two instances must not see each other's input or errors."""

import pytest

from reservations.api.serializers import ReservationCreateSerializer

VALID = {
    "room": 3, "subject": "Planning", "start": "2030-05-06T09:00:00+02:00", "end": "2030-05-06T10:00:00+02:00",
    "attendees": [{"email": "bob@example.com", "type": "optional"}], "kind": "standard",
    "recurrence": {"frequency": "weekly", "weekdays": [1, 3], "count": 4}, "source": "rest_api",
}
INVALID = {
    "room": 0, "subject": "x" * 300, "start": "2030-05-06T09:00:00", "end": "soon", "kind": "party",
    "attendees": [{"email": "not-an-address"}], "recurrence": {"frequency": "hourly"}, "source": "portal",
    "subsource": "mine",
}


def _snapshot(fields) -> dict:
    """Each declared field's attributes, and of what they hold, as (identity, repr)."""
    out = {}
    for name, field in fields.items():
        for attr, value in vars(field).items():
            out[(name, attr)] = (id(value), repr(value))
        child = getattr(field, "child", None)
        if child is not None:
            for attr, value in vars(child).items():
                out[(name, "child", attr)] = (id(value), repr(value))
    return out


@pytest.mark.django_db
def test_validating_leaves_the_declared_fields_as_they_were():
    declared = ReservationCreateSerializer._declared_fields
    before = _snapshot(declared)

    for data in (VALID, INVALID, {}, VALID):
        ReservationCreateSerializer(data=data).is_valid()

    assert _snapshot(declared) == before
    assert all(getattr(field, "parent", None) is None for field in declared.values())


@pytest.mark.django_db
def test_instances_validated_in_turn_keep_their_own_result():
    good, bad = ReservationCreateSerializer(data=VALID), ReservationCreateSerializer(data=INVALID)
    assert not bad.is_valid()
    assert good.is_valid(), good.errors

    assert good.validated_data["subject"] == "Planning"
    assert good.validated_data["attendees"] == [{"email": "bob@example.com", "name": "", "type": "optional"}]
    assert good.validated_data["recurrence"]["weekdays"] == [1, 3]
    assert set(bad.errors) == {"room", "subject", "start", "end", "kind", "attendees", "recurrence", "source", "subsource"}
    assert "naive" not in str(good.errors)
    assert good.fields["subject"].parent is good and bad.fields["subject"].parent is bad
    assert good.fields["subject"] is not bad.fields["subject"]
