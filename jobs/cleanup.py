"""Cleanup run by cron: overdue jobs, leftover inputs and links, expired results and thumbnails, and
files no row refers to (left by a process killed between writing a file and recording it).

Every step is a conditional update or an idempotent delete, so two runs at once are harmless; the
command still takes an advisory lock so overlapping cron runs do not duplicate work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from jobs.models import Job
from jobs.services import jobs_recover_stale
from jobs.states import FINAL_STATES, LIVE_STATES
from media import storage
from media.models import MediaObject
from photochanger.db import session_advisory_lock
from slots.services import studio_settings_get

ADVISORY_LOCK_KEY = 0x50484F544F  # "PHOTO"
# A file under inputs/, results/ or thumbnails/ that no row refers to is removed once it is this old.
# Such files are left by a process killed (SIGKILL, power loss) after writing a file and before its row
# recorded it — a web process between storing the photo and creating the job, a worker between storing a
# result or a thumbnail and its finalize — or after a row released a file and before it was deleted. A
# file is recorded at most a minute or two after it is written (the sync window is at most 60 s, the
# worker waits at most 30 s more for a late thumbnail), so this age leaves every live job's files alone.
ORPHAN_FILE_MIN_AGE = timedelta(minutes=15)
ORPHAN_CHECK_BATCH = 1000


@dataclass
class CleanupReport:
    requeued_jobs: int = 0
    timed_out_jobs: int = 0
    media_files_removed: int = 0
    media_rows_expired: int = 0
    results_removed: int = 0
    thumbnails_removed: int = 0
    orphan_files_removed: int = 0
    skipped_locked: bool = False

    def summary(self) -> str:
        if self.skipped_locked:
            return "cleanup: another cleanup is running; nothing done"
        return (
            f"cleanup: jobs requeued={self.requeued_jobs} timed_out={self.timed_out_jobs}; "
            f"media expired={self.media_rows_expired} files_removed={self.media_files_removed}; "
            f"results removed={self.results_removed}; thumbnails removed={self.thumbnails_removed}; "
            f"orphan files removed={self.orphan_files_removed}"
        )


def cleanup_run(*, dry_run: bool = False, orphan_min_age: timedelta = ORPHAN_FILE_MIN_AGE) -> CleanupReport:
    report = CleanupReport()
    # The lock lives on a connection of its own (straight to PostgreSQL behind PgBouncer), not on
    # Django's: through a transaction pooler the unlock could reach another server connection.
    with session_advisory_lock(ADVISORY_LOCK_KEY) as acquired:
        if not acquired:
            report.skipped_locked = True
            return report
        _cleanup(report, dry_run=dry_run, orphan_min_age=orphan_min_age)
    return report


def _cleanup(report: CleanupReport, *, dry_run: bool, orphan_min_age: timedelta) -> None:
    now = timezone.now()
    if dry_run:
        report.timed_out_jobs = Job.objects.filter(state__in=list(LIVE_STATES), expires_at__lte=now).count()
        report.media_rows_expired = _expired_media(now).count()
        report.results_removed = _expired_results(now).count()
        report.thumbnails_removed = (
            _expired_results(now).exclude(result_thumbnail_path="").count()
            + _expired_input_thumbnails(now).count()
        )
        report.orphan_files_removed = len(orphan_files(older_than=now - orphan_min_age))
        return
    for media_id, path, owns_file in _expired_media(now).values_list("id", "path", "owns_file"):
        if MediaObject.objects.filter(id=media_id, deleted_at__isnull=True).update(deleted_at=now):
            report.media_rows_expired += 1
            if owns_file and storage.delete(path):
                report.media_files_removed += 1
    # After the media pass, so inputs of overdue jobs are counted above, not removed silently here.
    report.requeued_jobs, report.timed_out_jobs = jobs_recover_stale(
        batch=10_000, requeue=_server_up_for_a_while()
    )
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
    # Last: every file released above is gone already and not counted twice.
    for path in orphan_files(older_than=now - orphan_min_age):
        if storage.delete(path):
            report.orphan_files_removed += 1


def _server_up_for_a_while() -> bool:
    """Whether PostgreSQL has been up for longer than two worker leases.

    Just after the server restarted, every live worker's leases have lapsed (nobody could renew them
    while it was down) and the workers are only now renewing them. Requeueing lapsed leases then would
    send jobs still in a live worker's hands to the provider a second time; the workers themselves
    requeue dead workers' jobs once they have renewed their own (``Worker._may_requeue_others``). Past
    deadlines are timed out either way.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT now() - pg_postmaster_start_time() > make_interval(secs => %s)",
            [2 * settings.WORKER_LEASE_SECONDS],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


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


def orphan_files(*, older_than: datetime) -> list[str]:
    """Files under inputs/, results/ and thumbnails/ written before ``older_than`` that no row keeps.

    Kept: an input whose media row is live, a result whose job still holds it, a thumbnail its job
    records. Our files are named after their job (``<job id>…``); any other name is left alone.
    """
    candidates: dict[uuid.UUID, list[str]] = {}
    for folder in (storage.INPUTS_DIR, storage.RESULTS_DIR, storage.THUMBNAILS_DIR):
        # Through the media store, so the sweep works on S3 too (one listing request per 1,000 objects).
        for path, modified in storage.list_folder(folder):
            job_id = _job_id_of(path.rsplit("/", 1)[-1])
            if job_id is not None and modified < older_than:
                candidates.setdefault(job_id, []).append(path)
    job_ids = list(candidates)
    kept: set[str] = set()
    for start in range(0, len(job_ids), ORPHAN_CHECK_BATCH):
        batch = job_ids[start : start + ORPHAN_CHECK_BATCH]
        kept.update(
            MediaObject.objects.filter(job_id__in=batch, deleted_at__isnull=True).values_list(
                "path", flat=True
            )
        )
        for result, result_deleted_at, *thumbnails in Job.objects.filter(id__in=batch).values_list(
            "result_path", "result_deleted_at", "result_thumbnail_path", "input_thumbnail_path"
        ):
            kept.update(thumbnails)
            if result_deleted_at is None:
                kept.add(result)
    return [path for paths in candidates.values() for path in paths if path not in kept]


def _job_id_of(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(name[:36])
    except ValueError:
        return None
