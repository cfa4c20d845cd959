"""Paging of the API's lists: ``limit`` (default 50, capped at 200) and ``offset``, and
the envelope ``{count, next, previous, results}``, written once for the views and for the
OpenAPI schema (the list views are APIViews, which drf-spectacular doesn't page itself)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

from reservations import parsing

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class Pagination(LimitOffsetPagination):
    """DRF's limit/offset paging with a cap: ``limit=1000000`` gives one page of 200.
    A limit or offset that isn't a whole number falls back to the default (DRF's rule)."""

    default_limit = DEFAULT_PAGE_SIZE
    max_limit = MAX_PAGE_SIZE

    def get_offset(self, request):
        # An offset past PostgreSQL's bigint would fail the query; nothing lives there anyway.
        return min(super().get_offset(request), parsing.MAX_ID - MAX_PAGE_SIZE)


PARAMETERS = [
    OpenApiParameter(
        "limit", OpenApiTypes.INT, required=False,
        description=f"Page size: default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE} (a larger value gives {MAX_PAGE_SIZE}).",
    ),
    OpenApiParameter("offset", OpenApiTypes.INT, required=False, description="How many rows to skip (default 0)."),
]

_pages: dict[str, type[serializers.Serializer]] = {}


def page_of(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of one page of ``serializer_class`` rows (``PaginatedRoomList`` ...)."""
    name = f"Paginated{serializer_class.__name__.removesuffix('Serializer')}List"
    if name not in _pages:
        _pages[name] = type(name, (serializers.Serializer,), {
            "count": serializers.IntegerField(help_text="Rows in all pages."),
            "next": serializers.URLField(allow_null=True, help_text="The next page, null on the last."),
            "previous": serializers.URLField(allow_null=True, help_text="The previous page, null on the first."),
            "results": serializer_class(many=True),
            "__module__": __name__,
        })
    return _pages[name]
