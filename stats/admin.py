"""The processing log in the staff console: read-only (no add, no change, no delete), cheap to list."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from photochanger.admin_lists import DateRangeFilter, cheap_paginator, datetime_to_second
from photochanger.errors import HTTP_STATUS, FailureReason
from stats.models import ProcessingLogEntry


class LoggedAtFilter(DateRangeFilter):
    title = _("time")
    field_name = "created_at"


class FailureReasonFilter(admin.SimpleListFilter):
    """Reasons from the error catalogue (no ``SELECT DISTINCT`` over the whole log)."""

    title = _("failure reason")
    parameter_name = "failure_reason"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(reason.value), str(reason.label)) for reason in FailureReason]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(failure_reason=value) if value else queryset


class HttpStatusFilter(admin.SimpleListFilter):
    """The statuses the service answers with (from the catalogue), plus 200."""

    title = _("HTTP status")
    parameter_name = "http_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(status), str(status)) for status in sorted({200, *HTTP_STATUS.values()})]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(http_status=int(value)) if value and value.isdigit() else queryset


@admin.register(ProcessingLogEntry)
class ProcessingLogEntryAdmin(admin.ModelAdmin[ProcessingLogEntry]):
    list_display = ["logged_at", "event", "slot_id", "http_status", "failure_reason", "duration_ms", "job"]
    list_filter = ["event", FailureReasonFilter, HttpStatusFilter, LoggedAtFilter]
    search_fields = ["=slot_id"]
    list_select_related = ["job"]
    ordering = ["-created_at"]
    # Big table: no COUNT(*) of the whole log (see photochanger.admin_lists).
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    class Media:
        css = {"all": ["photochanger/admin_lists.css"]}

    @admin.display(description=_("time"), ordering="created_at")
    def logged_at(self, entry: ProcessingLogEntry) -> str:
        return datetime_to_second(entry.created_at)

    def get_paginator(self, request: HttpRequest, queryset: QuerySet[Any], per_page: int, orphans: int = 0, allow_empty_first_page: bool = True) -> Any:  # fmt: skip
        return cheap_paginator(request, queryset, per_page, orphans, allow_empty_first_page)

    LOG_FIELDS = (
        "logged_at",
        "event",
        "slot_id",
        "job",
        "http_status",
        "job_state",
        "failure_reason",
        "duration_ms",
        "client_ip",
        "password_guess",
        "details",
    )
    fields = LOG_FIELDS
    readonly_fields = LOG_FIELDS

    # The log is a record of what happened: nobody adds, edits or deletes entries (no delete action).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ProcessingLogEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ProcessingLogEntry | None = None) -> bool:
        return False
