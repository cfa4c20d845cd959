"""Portal links to one object (a room's week, its booking form, a reservation's page) without
a ``reverse()`` per link: a page of 25 rooms or a grid of busy cells reversed them one by one,
at about a tenth of a millisecond each (issue 14's page-speed target). The URL pattern is
reversed once per URL name, script prefix and URLconf, then the id is put in its place."""

from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse

_MARKER = 918273645546372819  # an id no row has: it marks where the id goes
_split: dict[tuple, tuple[str, str]] = {}


def id_url_parts(name: str) -> tuple[str, str]:
    """The URL whose one argument is an integer id as (before, after) the id: a grid puts the
    ids in itself, f"{head}{pk}{tail}", for hundreds of cells."""
    key = (name, get_script_prefix(), get_resolver(get_urlconf()))  # the resolver object: a new URLconf is a new key
    parts = _split.get(key)
    if parts is None:
        head, tail = reverse(name, args=[_MARKER]).split(str(_MARKER))
        parts = _split[key] = (head, tail)
    return parts


def id_url(name: str, pk: int) -> str:
    """``reverse(name, args=[pk])`` for a URL whose one argument is an integer id."""
    head, tail = id_url_parts(name)
    return f"{head}{pk}{tail}"
