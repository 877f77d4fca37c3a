from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from stats.models import ProcessingLogEntry


@admin.register(ProcessingLogEntry)
class ProcessingLogEntryAdmin(admin.ModelAdmin[ProcessingLogEntry]):
    list_display = ["created_at", "event", "slot_id", "http_status", "failure_reason", "duration_ms", "job"]
    list_filter = ["event", "failure_reason", "http_status"]
    search_fields = ["slot_id", "job__id"]
    list_select_related = ["job"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: ProcessingLogEntry | None = None) -> list[str]:
        return [field.name for field in ProcessingLogEntry._meta.concrete_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ProcessingLogEntry | None = None) -> bool:
        return False
