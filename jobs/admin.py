from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    """Jobs are read-only: state changes only through guarded services."""

    list_display = ["id", "slot", "state", "provider", "created_at", "finalized_at", "failure_reason"]
    list_filter = ["state", "provider", "failure_reason", "slot"]
    list_select_related = ["slot"]
    search_fields = ["id", "provider_job_reference"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        return [field.name for field in Job._meta.get_fields() if getattr(field, "concrete", False)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False
