"""List filters whose choices stay short at a large enterprise's scale (issue 17: 2,000 rooms,
thousands of people, approvers groups and mailboxes).

Django's ``RelatedFieldListFilter`` lists every related object (and reads each one's ``str()``,
often a query each: a room's name says its building), ``AllValuesFieldListFilter`` every distinct
value: thousands of links in the sidebar. These list the first ``CHOICES_LIMIT`` (the related
admin's ordering, else the model's), always with the one filtered by, and then a box that
narrows the list: by the related admin's search (its ``search_fields``, as its autocomplete
does), or a value's start. Use them where the choices grow with the data:

    list_filter = [("room", CappedRelatedFieldListFilter), ("mailbox", CappedAllValuesFieldListFilter)]
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.sites import NotRegistered
from django.contrib.admin.utils import get_model_from_relation
from django.contrib.admin.views.main import PAGE_VAR

CHOICES_LIMIT = 100


class _Capped:
    """What both filters share: the narrowing parameter ``<field path>__narrow`` (taken out of
    the lookups before Django's filter sees them, so it never filters the rows), the page's
    other parameters for the box's form, and the template that shows the box."""

    template = "admin/capped_filter.html"
    limit = CHOICES_LIMIT

    def _take_narrowing(self, request, params: dict, field_path: str) -> None:
        self.narrow_parameter = f"{field_path}__narrow"
        values = params.pop(self.narrow_parameter, None) or [""]
        self.narrow = (values[-1] if isinstance(values, list) else values).strip()
        self.kept_parameters = [(name, value) for name, values in request.GET.lists() if name not in (self.narrow_parameter, PAGE_VAR)
                                for value in values]
        self.capped = False

    def expected_parameters(self):
        # Listed so that "Clear all filters" drops the narrowing too.
        return [*super().expected_parameters(), self.narrow_parameter]

    @property
    def shows_box(self) -> bool:
        return self.capped or bool(self.narrow)


class CappedRelatedFieldListFilter(_Capped, admin.RelatedFieldListFilter):
    """A foreign key's (or many-to-many's) filter listing at most ``CHOICES_LIMIT`` related objects."""

    narrow_help = "type a name (searched as in its own list) to find another."

    def __init__(self, field, request, params, model, model_admin, field_path):
        self._take_narrowing(request, params, field_path)
        super().__init__(field, request, params, model, model_admin, field_path)

    def field_choices(self, field, request, model_admin):
        related_model = get_model_from_relation(field)
        try:
            related_admin = model_admin.admin_site.get_model_admin(related_model)
        except NotRegistered:
            related_admin = None
        queryset = related_model._default_manager.complex_filter(field.get_limit_choices_to())
        ordering = self.field_admin_ordering(field, request, model_admin) or related_model._meta.ordering or ["pk"]
        queryset = queryset.order_by(*ordering)
        # What the related admin's list reads with each row is what its str() needs (a room's building).
        select = getattr(related_admin, "list_select_related", False)
        if select is True:
            queryset = queryset.select_related()
        elif select:
            queryset = queryset.select_related(*select)
        listed = queryset
        if self.narrow and related_admin is not None and related_admin.get_search_fields(request):
            listed, duplicates = related_admin.get_search_results(request, queryset, self.narrow)
            if duplicates:
                listed = listed.distinct()
        target = field.target_field.attname
        rows = list(listed[: self.limit + 1])
        self.capped = len(rows) > self.limit
        choices = [(getattr(obj, target), str(obj)) for obj in rows[: self.limit]]
        missing = set(self.lookup_val or ()) - {str(value) for value, _ in choices}
        if missing:
            try:
                choices = [(getattr(obj, target), str(obj)) for obj in queryset.filter(**{f"{target}__in": missing})] + choices
            except (ValueError, TypeError) as exc:  # not an id: Django's own filter reports it the same way
                raise IncorrectLookupParameters(exc) from exc
        return choices


class CappedAllValuesFieldListFilter(_Capped, admin.AllValuesFieldListFilter):
    """A plain field's filter listing at most ``CHOICES_LIMIT`` of its distinct values (by value);
    the box narrows them to those starting with what is typed."""

    narrow_help = "type its start to find another."

    def __init__(self, field, request, params, model, model_admin, field_path):
        self._take_narrowing(request, params, field_path)
        super().__init__(field, request, params, model, model_admin, field_path)
        values = self.lookup_choices
        if self.narrow:
            values = values.filter(**{f"{field.name}__istartswith": self.narrow})
        rows = list(values[: self.limit + 1])
        self.capped = len(rows) > self.limit
        rows = rows[: self.limit]
        shown = {str(value) for value in rows}
        self.lookup_choices = [value for value in self.lookup_val or () if value not in shown] + rows
