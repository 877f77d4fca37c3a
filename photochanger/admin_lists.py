"""Admin list helpers for big tables (jobs, the processing log): cheap counting, a date range filter,
and times shown to the second.

Counting: an unfiltered list of a big table is counted from PostgreSQL's own estimate
(``pg_class.reltuples``, kept by autovacuum/ANALYZE) instead of ``COUNT(*)`` over millions of rows;
filtered lists and small tables are counted exactly. ModelAdmins using it also set
``show_full_result_count = False`` (no second count of the whole table) and ``show_facets =
ShowFacets.NEVER`` (no count per filter choice).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IS_FACETS_VAR, IS_POPUP_VAR, TO_FIELD_VAR, IncorrectLookupParameters
from django.contrib.admin.views.main import ALL_VAR, ERROR_FLAG, ORDER_VAR, PAGE_VAR, ChangeList
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Model, QuerySet
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from django.utils.formats import date_format, number_format, time_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# Query-string parameters of a changelist that do not filter its rows.
NOT_FILTERING = frozenset(
    {PAGE_VAR, ORDER_VAR, ALL_VAR, ERROR_FLAG, IS_POPUP_VAR, TO_FIELD_VAR, IS_FACETS_VAR}
)


def datetime_to_second(value: dt.datetime | None) -> str:
    """A moment in the current time zone, to the second, in the active language's short date format."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return f"{date_format(local, 'SHORT_DATE_FORMAT')} {time_format(local, 'H:i:s')}"


def seconds_number(seconds: float) -> str:
    """Seconds in the active language's number format: hundredths below one second ("0,04"), else tenths."""
    return number_format(seconds, 2 if abs(seconds) < 1 else 1)


def seconds_text(seconds: float | None) -> str:
    """A duration for staff: "3,2 с" / "0,04 с" in Russian, "3.2 s" in English; "—" for none."""
    if seconds is None:
        return "—"
    return gettext("%(seconds)s s") % {"seconds": seconds_number(seconds)}


def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def table_row_estimate(table: str) -> int | None:
    """PostgreSQL's estimate of the rows in ``table``; None when it has none yet (never analyzed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


class EstimatedCountPaginator(Paginator):
    """Django's paginator; given ``estimate_table``, a count at or above ``EXACT_COUNT_BELOW`` is the
    planner's estimate (``is_estimate`` then True) and never a ``COUNT(*)``.

    Below the threshold the estimate is too rough to page by, and an exact count is cheap anyway.
    """

    EXACT_COUNT_BELOW = 10_000

    def __init__(
        self, object_list: Any, per_page: int, *args: Any, estimate_table: str | None = None, **kwargs: Any
    ):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.estimate_table = estimate_table
        self.is_estimate = False

    @cached_property
    def count(self) -> int:
        if self.estimate_table:
            estimate = table_row_estimate(self.estimate_table)
            if estimate is not None and estimate >= self.EXACT_COUNT_BELOW:
                self.is_estimate = True
                return estimate
        return int(super().count)


def list_is_filtered(request: HttpRequest) -> bool:
    """Whether the changelist request narrows the rows (a filter or a search), not just pages or sorts."""
    return any(
        name not in NOT_FILTERING and any(value != "" for value in values)
        for name, values in request.GET.lists()
    )


def cheap_paginator(
    request: HttpRequest,
    queryset: QuerySet[Any],
    per_page: int,
    orphans: int = 0,
    allow_empty_first_page: bool = True,
) -> EstimatedCountPaginator:
    """The paginator for a ModelAdmin's ``get_paginator``: estimated when the whole table is listed."""
    model: type[Model] = queryset.model
    return EstimatedCountPaginator(
        queryset,
        per_page,
        orphans,
        allow_empty_first_page,
        estimate_table=None if list_is_filtered(request) else model._meta.db_table,
    )


class DateRangeFilter(admin.ListFilter):
    """From/to dates (inclusive, in the current time zone) on one datetime field, as two date inputs."""

    title = _("date")
    template = "admin/photochanger/date_range_filter.html"
    field_name = "created_at"
    parameter_from = "date_from"
    parameter_to = "date_to"

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        for name in (self.parameter_from, self.parameter_to):
            if name in params:
                value = params.pop(name)
                value = value[-1] if isinstance(value, list) else value
                if value:
                    self.used_parameters[name] = value

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_from, self.parameter_to]

    def _day(self, name: str) -> dt.date | None:
        value = self.used_parameters.get(name)
        if not isinstance(value, str) or not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError as error:
            raise IncorrectLookupParameters(error) from error

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        start, end = self._day(self.parameter_from), self._day(self.parameter_to)
        zone = timezone.get_current_timezone()
        if start is not None:
            since = dt.datetime.combine(start, dt.time.min, tzinfo=zone)
            queryset = queryset.filter(**{f"{self.field_name}__gte": since})
        if end is not None:
            until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
            queryset = queryset.filter(**{f"{self.field_name}__lt": until})
        return queryset

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:
        keep = QueryDict(
            changelist.get_query_string(remove=[self.parameter_from, self.parameter_to, PAGE_VAR])[1:]
        )
        hidden: Sequence[tuple[str, str]] = [
            (name, value) for name, values in keep.lists() for value in values
        ]
        yield {
            "parameter_from": self.parameter_from,
            "parameter_to": self.parameter_to,
            "value_from": self.used_parameters.get(self.parameter_from, ""),
            "value_to": self.used_parameters.get(self.parameter_to, ""),
            "hidden": hidden,
            "reset_query_string": changelist.get_query_string(
                remove=[self.parameter_from, self.parameter_to, PAGE_VAR]
            ),
            "selected": bool(self.used_parameters),
        }
