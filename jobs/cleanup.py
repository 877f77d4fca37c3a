"""Cleanup run by cron: overdue jobs, leftover inputs and links, expired results and thumbnails.

Every step is a conditional update or an idempotent delete, so two runs at once are harmless; the
command still takes an advisory lock so overlapping cron runs do not duplicate work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from jobs.models import Job
from jobs.services import jobs_recover_stale
from jobs.states import FINAL_STATES, LIVE_STATES
from media import storage
from media.models import MediaObject
from slots.services import studio_settings_get

ADVISORY_LOCK_KEY = 0x50484F544F  # "PHOTO"


@dataclass
class CleanupReport:
    requeued_jobs: int = 0
    timed_out_jobs: int = 0
    media_files_removed: int = 0
    media_rows_expired: int = 0
    results_removed: int = 0
    thumbnails_removed: int = 0
    skipped_locked: bool = False

    def summary(self) -> str:
        if self.skipped_locked:
            return "cleanup: another cleanup is running; nothing done"
        return (
            f"cleanup: jobs requeued={self.requeued_jobs} timed_out={self.timed_out_jobs}; "
            f"media expired={self.media_rows_expired} files_removed={self.media_files_removed}; "
            f"results removed={self.results_removed}; thumbnails removed={self.thumbnails_removed}"
        )


def cleanup_run(*, dry_run: bool = False) -> CleanupReport:
    report = CleanupReport()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        if not cursor.fetchone()[0]:
            report.skipped_locked = True
            return report
    try:
        now = timezone.now()
        if dry_run:
            report.timed_out_jobs = Job.objects.filter(
                state__in=list(LIVE_STATES), expires_at__lte=now
            ).count()
            report.media_rows_expired = _expired_media(now).count()
            report.results_removed = _expired_results(now).count()
            report.thumbnails_removed = (
                _expired_results(now).exclude(result_thumbnail_path="").count()
                + _expired_input_thumbnails(now).count()
            )
            return report
        for media_id, path, owns_file in _expired_media(now).values_list("id", "path", "owns_file"):
            if MediaObject.objects.filter(id=media_id, deleted_at__isnull=True).update(deleted_at=now):
                report.media_rows_expired += 1
                if owns_file and storage.delete(path):
                    report.media_files_removed += 1
        # After the media pass, so inputs of overdue jobs are counted above, not removed silently here.
        report.requeued_jobs, report.timed_out_jobs = jobs_recover_stale(batch=10_000)
        expired = _expired_results(now).values_list("id", "result_path", "result_thumbnail_path")
        for job_id, path, thumbnail_path in expired:
            # The result's thumbnail goes with it: the gallery then shows the result as expired.
            if Job.objects.filter(id=job_id, result_deleted_at__isnull=True).update(
                result_deleted_at=now, result_thumbnail_path=""
            ):
                storage.delete(path)
                report.results_removed += 1
                if storage.delete(thumbnail_path):
                    report.thumbnails_removed += 1
        for job_id, path in _expired_input_thumbnails(now).values_list("id", "input_thumbnail_path"):
            if Job.objects.filter(id=job_id, input_thumbnail_path=path).update(input_thumbnail_path=""):
                if storage.delete(path):
                    report.thumbnails_removed += 1
        return report
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])


def _expired_media(now: datetime) -> QuerySet[MediaObject]:
    # Inputs and links of final jobs, and anything past its expiry (served by media_live_expiry_idx).
    return MediaObject.objects.filter(deleted_at__isnull=True).filter(
        Q(expires_at__lte=now) | Q(job__state__in=list(FINAL_STATES))
    )


def _expired_results(now: datetime) -> QuerySet[Job]:
    # served by job_result_expiry_idx
    return Job.objects.filter(result_deleted_at__isnull=True, result_expires_at__lte=now).exclude(
        result_path=""
    )


def _expired_input_thumbnails(now: datetime) -> QuerySet[Job]:
    """Final jobs whose input thumbnail has outlived the result retention (counted from finalization)."""
    retention = timedelta(hours=studio_settings_get().result_retention_hours)
    # served by job_input_thumbnail_idx
    return Job.objects.exclude(input_thumbnail_path="").filter(
        state__in=list(FINAL_STATES), finalized_at__lte=now - retention
    )
