from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from jobs.models import Job
from jobs.services import job_cancel


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

    actions = ["cancel_live_jobs"]

    @admin.action(description=_("Cancel selected live jobs"))
    def cancel_live_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """Guarded: only pending/processing jobs move (to cancelled); final jobs never change."""
        cancelled = sum(
            1
            for job_id in queryset.values_list("id", flat=True)
            if job_cancel(job_id=job_id, message=f"Cancelled by {request.user}.")
        )
        skipped = queryset.count() - cancelled
        self.message_user(
            request,
            _("Cancelled %(cancelled)s job(s); %(skipped)s were already final.")
            % {"cancelled": cancelled, "skipped": skipped},
            messages.SUCCESS if cancelled else messages.WARNING,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False
