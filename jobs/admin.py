"""Jobs in the staff console: a list read at a glance, a read-only job page, staff-only thumbnails."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from jobs.admin_views import can_see_results
from jobs.models import Job
from jobs.selectors import job_outcome, job_thumbnail_path
from jobs.services import job_cancel
from jobs.share import share_url
from jobs.states import JobState
from media import storage, thumbnails
from photochanger.admin_lists import (
    DateRangeFilter,
    cheap_paginator,
    datetime_to_second,
    seconds_between,
    seconds_number,
    seconds_text,
)
from photochanger.errors import FailureReason
from providers.kinds import ProviderKind

# Never shown, even if a booth sent it under another name than the one ingest drops.
SECRET_METADATA_KEYS = frozenset({"password", "pass", "passwd", "secret", "token", "api_key", "key"})

# What DSLR Remote Pro's fields mean, for the job page's metadata table (others are shown by name).
METADATA_LABELS = {
    "time": _("Booth time (Unix seconds)"),
    "user_id": _("User"),
    "id": _("Booth photo id"),
    "hash": _("Hash"),
    "profile": _("Profile file"),
    "status": _("Status file"),
    "name": _("Booth computer"),
    "model": _("System"),
    "version": _("DSLR Remote Pro version"),
    "_upload.field": _("File field"),
    "_upload.filename": _("File name"),
    "_upload.content_type": _("Declared type"),
    "_upload.size_bytes": _("File size, bytes"),
    "test_run.started_by": _("Test run started by"),
    "test_run.filename": _("File name"),
    "test_run.sample_photo": _("Sample photo"),
}

_HEX_PREFIX = re.compile(r"^[0-9a-f-]{4,36}$")


def state_badge(state: str) -> SafeString:
    return format_html('<span class="job-state job-state--{}">{}</span>', state, JobState(state).label)


class CreatedDateFilter(DateRangeFilter):
    title = _("received")
    field_name = "created_at"


class JobFailureFilter(admin.SimpleListFilter):
    """The failure reasons a job can end with (the others are the booth's rejected requests: no job)."""

    title = _("failure reason")
    parameter_name = "failure_reason"
    REASONS = (
        FailureReason.PROVIDER_ERROR,
        FailureReason.PROVIDER_TIMEOUT,
        FailureReason.INTERNAL_ERROR,
        FailureReason.SERVICE_UNAVAILABLE,
    )

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(reason.value), str(reason.label)) for reason in self.REASONS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(failure_reason=value) if value else queryset


class ProviderFilter(admin.SimpleListFilter):
    """Providers from their fixed list (no ``SELECT DISTINCT`` over the whole jobs table)."""

    title = _("provider")
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(kind.value), str(kind.label)) for kind in ProviderKind]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(provider=value) if value else queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    """Jobs are read-only: state changes only through guarded services."""

    list_display = [
        "thumbnail",
        "short_id",
        "created",
        "slot_name",
        "state_colored",
        "duration",
        "provider",
    ]
    list_display_links = ["short_id"]
    list_filter = ["slot", ProviderFilter, "state", JobFailureFilter, "is_test", CreatedDateFilter]
    search_fields = ["id"]
    search_help_text = _("A job id, or its first characters (the short id); or the provider's reference.")
    ordering = ["-created_at"]
    list_per_page = 50
    # Big tables: no COUNT(*) of the whole table (see photochanger.admin_lists).
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "slot",
                    "is_test",
                    "state_colored",
                    "failure_in_words",
                    "duration",
                    "previews",
                    "timeline",
                    "metadata_table",
                ]
            },
        ),
        (
            _("Provider"),
            {
                "fields": [
                    "provider",
                    "operation",
                    "provider_settings",
                    "prompt_sent",
                    "templates",
                    "provider_job_reference",
                    "attempts",
                    "answered_by",
                ]
            },
        ),
        (
            _("Result file"),
            {
                "classes": ["collapse"],
                "fields": [
                    "result_path",
                    "result_mime_type",
                    "result_size_bytes",
                    "result_sha256",
                    "result_expires",
                    "result_deleted",
                    "late_result_at",
                    "share_page",
                    "input_thumbnail_path",
                    "result_thumbnail_path",
                ],
            },
        ),
        (
            _("Queue"),
            {"classes": ["collapse"], "fields": ["expires", "claimed_by", "claim_count", "lease_expires"]},
        ),
    ]

    class Media:
        css = {"all": ["jobs/admin.css", "photochanger/admin_lists.css"]}

    @admin.display(description=_("Guest's share page"))
    def share_page(self, obj: Job) -> SafeString | str:
        if not obj.share_token:
            return "—"
        url = share_url(obj.share_token)
        return format_html('<a href="{}" target="_blank" rel="noreferrer">{}</a>', url, url)

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        return [
            name for _title, options in self.fieldsets for name in options["fields"] if isinstance(name, str)
        ]

    def get_paginator(self, request: HttpRequest, queryset: QuerySet[Any], per_page: int, orphans: int = 0, allow_empty_first_page: bool = True) -> Any:  # fmt: skip
        return cheap_paginator(request, queryset, per_page, orphans, allow_empty_first_page)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Job], search_term: str
    ) -> tuple[QuerySet[Job], bool]:
        """A job id or its first characters, by primary-key range (an index scan, not a scan of every row's
        text); anything else: the provider's own reference."""
        term = search_term.strip().lower()
        if not term:
            return queryset, False
        if _HEX_PREFIX.match(term):
            digits = term.replace("-", "")
            if len(digits) <= 32:
                low = uuid.UUID(digits.ljust(32, "0"))
                high = uuid.UUID(digits.ljust(32, "f"))
                return queryset.filter(Q(id__gte=low, id__lte=high) | Q(provider_job_reference=term)), False
        return queryset.filter(provider_job_reference=search_term.strip()), False

    # --- list columns -----------------------------------------------------------------------------

    @admin.display(description=_("job"), ordering="id")
    def short_id(self, job: Job) -> SafeString:
        if job.is_test:
            return format_html(
                '{}<br><span class="job-test-badge" title="{}">{}</span>',
                str(job.id)[:8],
                gettext("test run"),
                gettext("test"),
            )
        return format_html("{}", str(job.id)[:8])

    @admin.display(description=_("slot"), ordering="slot_id")
    def slot_name(self, job: Job) -> str:
        return job.slot_id

    @admin.display(description=_("received"), ordering="created_at")
    def created(self, job: Job) -> str:
        return datetime_to_second(job.created_at)

    @admin.display(description=_("state"), ordering="state")
    def state_colored(self, job: Job) -> SafeString:
        return state_badge(job.state)

    @admin.display(description=_("duration"))
    def duration(self, job: Job) -> str:
        return seconds_text(seconds_between(job.created_at, job.finalized_at))

    @admin.display(description=_("preview"))
    def thumbnail(self, job: Job) -> SafeString | str:
        outcome = job_outcome(job)
        url = outcome.result_thumbnail_url or outcome.input_thumbnail_url
        if not url:
            return "—"
        return format_html('<img class="job-thumb" src="{}" alt="" loading="lazy">', url)

    # --- the job page -----------------------------------------------------------------------------

    @admin.display(description=_("failure"))
    def failure_in_words(self, job: Job) -> str:
        outcome = job_outcome(job)
        if not outcome.failure_label:
            return "—"
        if outcome.failure_message:
            return f"{outcome.failure_label}: {outcome.failure_message}"
        return outcome.failure_label

    @admin.display(description=_("photo and result"))
    def previews(self, job: Job) -> SafeString:
        outcome = job_outcome(job)
        if outcome.input_thumbnail_url:
            photo = format_html('<img src="{}" alt="{}">', outcome.input_thumbnail_url, gettext("Photo"))
        else:
            photo = format_html('<span class="job-preview__none">{}</span>', gettext("no preview"))
        if outcome.result_thumbnail_url:
            result = format_html(
                '<a href="{}"><img src="{}" alt="{}"></a>',
                outcome.download_url or outcome.result_thumbnail_url,
                outcome.result_thumbnail_url,
                gettext("Result"),
            )
        elif outcome.result_expired:
            result = format_html('<span class="job-preview__none">{}</span>', gettext("expired"))
        else:
            result = format_html('<span class="job-preview__none">{}</span>', gettext("no result"))
        download = (
            format_html('<a class="button" href="{}">{}</a>', outcome.download_url, gettext("Download"))
            if outcome.download_url
            else ""
        )
        return format_html(
            '<div class="job-previews">'
            '<figure class="job-preview">{}<figcaption>{}</figcaption></figure>'
            '<figure class="job-preview">{}<figcaption>{} {}</figcaption></figure>'
            "</div>",
            photo,
            gettext("Photo"),
            result,
            gettext("Result"),
            download,
        )

    @admin.display(description=_("timeline"))
    def timeline(self, job: Job) -> SafeString:
        steps = [
            ngettext("%(count)d call", "%(count)d calls", job.provider_calls) % {"count": job.provider_calls}
        ]
        if job.provider_job_reference:
            steps.append(gettext("reference %(reference)s") % {"reference": job.provider_job_reference})
        if job.claim_count > 1:
            claimed = ngettext("claimed %(count)d time", "claimed %(count)d times", job.claim_count)
            steps.append(claimed % {"count": job.claim_count})
        calls = " · ".join(steps)
        rows = [
            (
                gettext("Received"),
                datetime_to_second(job.created_at),
                _offset(job.created_at, job.created_at),
            ),
            (
                gettext("Claimed by a worker"),
                datetime_to_second(job.claimed_at),
                _offset(job.created_at, job.claimed_at),
            ),
            (gettext("Provider"), calls, ""),
            (
                gettext("Finalized"),
                datetime_to_second(job.finalized_at),
                _offset(job.created_at, job.finalized_at),
            ),
            (
                gettext("Deadline"),
                datetime_to_second(job.expires_at),
                _offset(job.created_at, job.expires_at),
            ),
        ]
        return format_html(
            '<table class="job-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            gettext("Step"),
            gettext("When"),
            gettext("Seconds since received"),
            format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows),
        )

    @admin.display(description=_("booth metadata"))
    def metadata_table(self, job: Job) -> SafeString | str:
        rows = [
            (str(METADATA_LABELS.get(name, name)), value)
            for name, value in _flatten(job.request_metadata or {})
            if name.rsplit(".", 1)[-1].lower() not in SECRET_METADATA_KEYS
        ]
        if not rows:
            return "—"
        return format_html(
            '<table class="job-table"><tbody>{}</tbody></table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    @admin.display(description=_("deadline"))
    def expires(self, job: Job) -> str:
        return datetime_to_second(job.expires_at)

    @admin.display(description=_("lease expires at"))
    def lease_expires(self, job: Job) -> str:
        return datetime_to_second(job.lease_expires_at)

    @admin.display(description=_("result expires at"))
    def result_expires(self, job: Job) -> str:
        return datetime_to_second(job.result_expires_at)

    @admin.display(description=_("result deleted at"))
    def result_deleted(self, job: Job) -> str:
        return datetime_to_second(job.result_deleted_at)

    # --- thumbnails -------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<uuid:job_id>/thumbnail/<str:kind>/",
                self.admin_site.admin_view(self.thumbnail_view),
                name="jobs_job_thumbnail",
            ),
        ]
        return own + super().get_urls()

    def thumbnail_view(self, request: HttpRequest, job_id: uuid.UUID, kind: str) -> HttpResponse:
        """A job's input or result thumbnail, to staff who may see jobs or slots; 404 when there is none."""
        if not can_see_results(request):
            raise PermissionDenied
        if kind not in thumbnails.KINDS:
            raise Http404
        stored = job_thumbnail_path(job_id=job_id, kind=kind)
        if not stored:
            raise Http404
        try:
            data = storage.read(stored)
        except OSError:  # gone, or the media store is down (logged by nobody: a preview is not worth it)
            raise Http404 from None
        # A thumbnail never changes (a new one gets a new name): the browser may keep it.
        return HttpResponse(
            data,
            content_type=thumbnails.THUMBNAIL_MIME_TYPE,
            headers={"Cache-Control": "private, max-age=86400"},
        )

    # --- actions and permissions ------------------------------------------------------------------

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
        summary = ngettext("Cancelled %(count)d job.", "Cancelled %(count)d jobs.", cancelled) % {
            "count": cancelled
        }
        if skipped:
            already = ngettext(
                "%(count)d job was already final.", "%(count)d jobs were already final.", skipped
            ) % {"count": skipped}
            summary = f"{summary} {already}"
        self.message_user(request, summary, messages.SUCCESS if cancelled else messages.WARNING)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False


def _offset(start: Any, end: Any) -> str:
    seconds = seconds_between(start, end)
    return "—" if seconds is None else f"+{seconds_number(seconds)}"


def _flatten(metadata: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name, value in metadata.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{key}."))
        elif isinstance(value, list):
            rows.append((key, ", ".join(str(item) for item in value)))
        elif isinstance(value, bool):
            rows.append((key, gettext("yes") if value else gettext("no")))
        else:
            rows.append((key, "" if value is None else str(value)))
    return rows
