"""Reads of jobs for staff pages: a slot's recent results (the gallery) and one job's outcome."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.states import FINAL_STATES, JobState
from media import thumbnails
from photochanger.admin_lists import seconds_between
from photochanger.errors import FailureReason

GALLERY_PAGE_SIZE = 10


def job_thumbnail_url(job_id: uuid.UUID, kind: str) -> str:
    """The staff-only address of one of a job's thumbnails (``jobs.admin.JobAdmin.thumbnail_view``)."""
    return reverse("admin:jobs_job_thumbnail", args=[job_id, kind])


def job_download_url(job_id: uuid.UUID) -> str:
    """The public download of a job's result (``GET /public/results/<job_id>``, until it expires)."""
    return reverse("public-result", args=[str(job_id)])


def has_result_q() -> Q:
    """Jobs with a result: succeeded ones, and timeouts whose late result was kept."""
    return Q(state=JobState.SUCCEEDED) | Q(state=JobState.TIMEOUT, late_result_at__isnull=False)


def job_result_expired(job: Job, now: datetime | None = None) -> bool:
    """The result was deleted, or its retention has passed (cleanup deletes it on its next run)."""
    now = now or timezone.now()
    return job.result_deleted_at is not None or (
        job.result_expires_at is not None and job.result_expires_at <= now
    )


@dataclass(frozen=True)
class RecentResult:
    """One succeeded job as the slot's gallery shows it."""

    job_id: uuid.UUID
    created_at: datetime
    duration_seconds: float | None  # received → finalized
    result_expires_at: datetime | None
    expired: bool
    is_test: bool
    is_late: bool  # arrived after the booth's window (the job is a timeout; jobs.late_results)
    thumbnail_url: str  # "" when there is none (not made, or removed with the expired result)
    download_url: str  # "" once expired
    job_url: str  # the job's admin page

    @property
    def short_id(self) -> str:
        return str(self.job_id)[:8]


@dataclass(frozen=True)
class RecentResults:
    """A page of a slot's results, newest first; ``has_more`` when older ones follow."""

    slot_id: str
    items: list[RecentResult]
    limit: int
    offset: int
    has_more: bool

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1 if self.limit else 1


def slot_recent_results(*, slot_id: str, limit: int = GALLERY_PAGE_SIZE, offset: int = 0) -> RecentResults:
    """The slot's most recent results, newest first: booth photos and staff test runs together (test runs
    marked ``is_test``), and results that arrived after the window (``is_late``), ``limit`` from ``offset``.

    One query (index ``job_slot_recent_idx``); one row more than asked tells whether more follow.
    """
    limit, offset = max(1, limit), max(0, offset)
    rows = list(
        Job.objects.filter(slot_id=slot_id)
        .filter(has_result_q())
        .order_by("-created_at")
        .only(
            "id",
            "created_at",
            "finalized_at",
            "is_test",
            "result_expires_at",
            "result_deleted_at",
            "result_thumbnail_path",
            "late_result_at",
        )[offset : offset + limit + 1]
    )
    now = timezone.now()
    items = []
    for job in rows[:limit]:
        expired = job_result_expired(job, now)
        items.append(
            RecentResult(
                job_id=job.id,
                created_at=job.created_at,
                duration_seconds=seconds_between(job.created_at, job.late_result_at or job.finalized_at),
                result_expires_at=job.result_expires_at,
                expired=expired,
                is_test=job.is_test,
                is_late=job.late_result_at is not None,
                thumbnail_url=""
                if expired or not job.result_thumbnail_path
                else job_thumbnail_url(job.id, thumbnails.RESULT),
                download_url="" if expired else job_download_url(job.id),
                job_url=reverse("admin:jobs_job_change", args=[job.id]),
            )
        )
    return RecentResults(slot_id=slot_id, items=items, limit=limit, offset=offset, has_more=len(rows) > limit)


@dataclass(frozen=True)
class JobOutcome:
    """Where a job stands, in the words staff read (the test-run page, the job page)."""

    job_id: uuid.UUID
    slot_id: str
    state: str
    state_label: str
    is_final: bool
    is_test: bool
    created_at: datetime
    expires_at: datetime
    finalized_at: datetime | None
    seconds: float  # received → finalized; while live, received → now
    failure_label: str  # the catalogue's label (translated), "" when nothing failed
    failure_message: str
    result_expired: bool
    result_thumbnail_url: str
    input_thumbnail_url: str
    download_url: str
    job_url: str


def job_outcome(job: Job) -> JobOutcome:
    now = timezone.now()
    succeeded = job.state == JobState.SUCCEEDED or job.late_result_at is not None
    expired = succeeded and job_result_expired(job, now)
    end = job.finalized_at if job.state in FINAL_STATES and job.finalized_at else now
    return JobOutcome(
        job_id=job.id,
        slot_id=job.slot_id,
        state=job.state,
        state_label=str(JobState(job.state).label),
        is_final=job.state in FINAL_STATES,
        is_test=job.is_test,
        created_at=job.created_at,
        expires_at=job.expires_at,
        finalized_at=job.finalized_at,
        seconds=max(0.0, (end - job.created_at).total_seconds()),
        failure_label=str(FailureReason(job.failure_reason).label) if job.failure_reason else "",
        failure_message=job.failure_message,
        result_expired=expired,
        result_thumbnail_url=job_thumbnail_url(job.id, thumbnails.RESULT)
        if succeeded and not expired and job.result_thumbnail_path
        else "",
        input_thumbnail_url=job_thumbnail_url(job.id, thumbnails.INPUT) if job.input_thumbnail_path else "",
        download_url=job_download_url(job.id) if succeeded and not expired and job.result_path else "",
        job_url=reverse("admin:jobs_job_change", args=[job.id]),
    )


def slot_test_run_get(*, slot_id: str, job_id: uuid.UUID) -> JobOutcome | None:
    """A staff test run of the slot; None when there is no such test job on this slot."""
    job = Job.objects.filter(id=job_id, slot_id=slot_id, is_test=True).first()
    return job_outcome(job) if job is not None else None


def job_thumbnail_path(*, job_id: uuid.UUID, kind: str) -> str:
    """Where a job's thumbnail of ``kind`` is stored; "" when it has none (or its result expired)."""
    if kind == thumbnails.INPUT:
        return Job.objects.filter(id=job_id).values_list("input_thumbnail_path", flat=True).first() or ""
    if kind == thumbnails.RESULT:
        row = (
            Job.objects.filter(id=job_id, result_deleted_at__isnull=True)
            .values_list("result_thumbnail_path", "result_expires_at")
            .first()
        )
        if row is None or (row[1] is not None and row[1] <= timezone.now()):
            return ""
        return row[0] or ""
    return ""
