"""Writes to jobs: creation at ingest, claiming and leasing by workers, finalization by whoever is first.

Every state change is a conditional UPDATE whose ``WHERE state IN (…)`` comes from ``jobs.states``; the
row count says whether this caller won. A final job never changes again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from jobs import deadlines
from jobs.models import Job
from jobs.states import FINAL_STATES, JobState, sources_for
from media import storage
from media.models import MediaKind, MediaObject
from photochanger.errors import FailureReason
from slots.models import Slot, StudioSettings
from stats.models import LogEvent, ProcessingLogEntry

logger = logging.getLogger(__name__)

CHANNEL_JOB_CREATED = "photochanger_job_created"
CHANNEL_JOB_FINISHED = "photochanger_job_finished"


def notify(channel: str, payload: str = "") -> None:
    """NOTIFY inside the caller's transaction: delivered only if it commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])


@dataclass(frozen=True)
class NewJobInput:
    job_id: uuid.UUID
    slot: Slot
    studio: StudioSettings
    photo: bytes
    photo_mime_type: str
    request_metadata: dict[str, Any]
    templates: list[dict[str, str]]
    client_ip: str | None


def job_create(*, new: NewJobInput) -> Job:
    """Store the input photo, create the pending job with its deadline, and wake the workers.

    The file is written first and removed again if the transaction fails: no orphan file, no job
    without its input.
    """
    created_at = timezone.now()
    expires_at = deadlines.job_expires_at(
        created_at=created_at, sync_response=timedelta(seconds=new.studio.sync_response_seconds)
    )
    relative_path = storage.input_path(new.job_id, new.photo_mime_type)
    storage.write_atomic(relative_path, new.photo)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                id=new.job_id,
                slot=new.slot,
                state=JobState.PENDING,
                provider=new.slot.provider,
                operation=new.slot.operation,
                provider_settings=new.slot.settings,
                templates=new.templates,
                created_at=created_at,
                expires_at=expires_at,
                request_metadata=new.request_metadata,
            )
            MediaObject.objects.create(
                job=job,
                kind=MediaKind.INPUT,
                path=relative_path,
                mime_type=new.photo_mime_type,
                size_bytes=len(new.photo),
                created_at=created_at,
                expires_at=expires_at,
            )
            ProcessingLogEntry.objects.create(
                created_at=created_at,
                event=LogEvent.INGEST_ACCEPTED,
                slot_id=new.slot.id,
                job=job,
                client_ip=new.client_ip,
                details={"size_bytes": len(new.photo), "mime_type": new.photo_mime_type},
            )
            notify(CHANNEL_JOB_CREATED)
    except BaseException:
        storage.delete(relative_path)
        raise
    return job


@dataclass(frozen=True)
class StoredResult:
    path: str
    mime_type: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class Outcome:
    state: JobState
    failure_reason: str = ""
    failure_message: str = ""
    result: StoredResult | None = None
    provider_calls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def job_finalize(*, job_id: uuid.UUID, outcome: Outcome, claimed_by: str | None = None) -> bool:
    """Move a live job to its final state if nobody else has; True when this call won.

    ``succeeded`` only lands before ``expires_at`` (a late provider answer is ignored) and, when
    ``claimed_by`` is given, only for the worker holding the claim. ``timeout`` only lands once the
    deadline has passed. On a win the input files are deleted and waiters are notified.
    """
    if outcome.state not in FINAL_STATES:
        raise ValueError(f"{outcome.state} is not a final state")
    now = timezone.now()
    candidates = Job.objects.filter(id=job_id, state__in=sources_for(outcome.state))
    if outcome.state == JobState.SUCCEEDED:
        candidates = candidates.filter(expires_at__gt=now)
    if outcome.state == JobState.TIMEOUT:
        candidates = candidates.filter(expires_at__lte=now)
    if claimed_by is not None:
        candidates = candidates.filter(claimed_by=claimed_by)
    changes: dict[str, Any] = {
        "state": outcome.state,
        "finalized_at": now,
        "lease_expires_at": None,
        "failure_reason": outcome.failure_reason,
        "failure_message": outcome.failure_message[:500],
        "provider_calls": F("provider_calls") + outcome.provider_calls,
    }
    if outcome.result is not None:
        retention_hours = StudioSettings.objects.values_list("result_retention_hours", flat=True).get(
            id=StudioSettings.SINGLETON_ID
        )
        changes.update(
            result_path=outcome.result.path,
            result_mime_type=outcome.result.mime_type,
            result_size_bytes=outcome.result.size_bytes,
            result_sha256=outcome.result.sha256,
            result_expires_at=deadlines.result_expires_at(
                finalized_at=now, retention=timedelta(hours=retention_hours)
            ),
        )
    with transaction.atomic():
        if candidates.update(**changes) != 1:
            return False
        job = Job.objects.only("id", "slot_id", "created_at").get(id=job_id)
        ProcessingLogEntry.objects.create(
            created_at=now,
            event=LogEvent.JOB_FINISHED,
            slot_id=job.slot_id,
            job_id=job_id,
            job_state=outcome.state,
            failure_reason=outcome.failure_reason,
            duration_ms=int((now - job.created_at).total_seconds() * 1000),
            details=outcome.extra,
        )
        notify(CHANNEL_JOB_FINISHED, str(job_id))
    media_release_for_job(job_id=job_id, now=now)
    return True


def media_release_for_job(*, job_id: uuid.UUID, now: datetime) -> int:
    """Delete the files a final job no longer needs (its input, its public links). Returns files removed."""
    released = list(
        MediaObject.objects.filter(job_id=job_id, deleted_at__isnull=True).values_list(
            "id", "path", "owns_file"
        )
    )
    if not released:
        return 0
    MediaObject.objects.filter(id__in=[media_id for media_id, _path, _owns in released]).update(
        deleted_at=now
    )
    removed = 0
    for _media_id, path, owns_file in released:
        if owns_file and storage.delete(path):
            removed += 1
    return removed


def job_cancel(*, job_id: uuid.UUID, message: str = "") -> bool:
    """Staff cancel of a live job (admin action). False when the job was already final."""
    return job_finalize(
        job_id=job_id,
        outcome=Outcome(
            state=JobState.CANCELLED,
            failure_reason=FailureReason.SERVICE_UNAVAILABLE,
            failure_message=message or "Cancelled by staff.",
        ),
    )


def job_time_out(*, job_id: uuid.UUID) -> bool:
    """Finalize a job whose window has ended without a result; False when someone finalized it first."""
    return job_finalize(
        job_id=job_id,
        outcome=Outcome(
            state=JobState.TIMEOUT,
            failure_reason=FailureReason.PROVIDER_TIMEOUT,
            failure_message="No result within the sync window.",
        ),
    )


# --- The queue: claim, lease, recover ------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedJob:
    job: Job
    input_path: Path
    input_mime_type: str
    api_key: str


_CLAIM_SQL = """
UPDATE jobs_job
   SET state = 'processing', claimed_at = %(now)s, lease_expires_at = %(lease)s,
       claimed_by = %(worker)s, claim_count = claim_count + 1
 WHERE id IN (
        -- served by the partial index job_pending_queue_idx
        SELECT id FROM jobs_job
         WHERE state = 'pending' AND expires_at > %(now)s
         ORDER BY created_at
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED)
RETURNING id
"""


def jobs_claim(*, worker: str, limit: int, lease: timedelta) -> list[ClaimedJob]:
    """Claim up to ``limit`` pending jobs for ``worker`` (SKIP LOCKED) and commit at once.

    The caller then works with no transaction open and finalizes with ``job_finalize``.
    """
    from providers.services import provider_key_get

    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"now": now, "lease": now + lease, "worker": worker, "limit": limit})
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    jobs = {job.id: job for job in Job.objects.filter(id__in=ids)}
    inputs = {
        media.job_id: media
        for media in MediaObject.objects.filter(job_id__in=ids, kind=MediaKind.INPUT, deleted_at__isnull=True)
    }
    keys: dict[str, str] = {}
    claimed = []
    for job_id in ids:
        job = jobs[job_id]
        media = inputs.get(job_id)
        if job.provider not in keys:
            keys[job.provider] = provider_key_get(provider=job.provider)
        claimed.append(
            ClaimedJob(
                job=job,
                input_path=storage.absolute(media.path) if media else Path(),
                input_mime_type=media.mime_type if media else "",
                api_key=keys[job.provider],
            )
        )
    return claimed


def jobs_renew_leases(*, worker: str, job_ids: list[uuid.UUID], lease: timedelta) -> set[uuid.UUID]:
    """Extend the leases of jobs ``worker`` is working on; returns the ids still processing for it."""
    if not job_ids:
        return set()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE jobs_job SET lease_expires_at = %s"
            " WHERE id = ANY(%s) AND state = 'processing' AND claimed_by = %s RETURNING id",
            [now + lease, job_ids, worker],
        )
        return {row[0] for row in cursor.fetchall()}


def jobs_recover_stale(*, batch: int = 200) -> tuple[int, int]:
    """Requeue jobs whose worker lost its lease while time remains; time out jobs past their deadline.

    Safe to run from every worker and from cleanup at once. Returns (requeued, timed_out).
    """
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE jobs_job SET state = 'pending', lease_expires_at = NULL, claimed_by = ''"
            " WHERE state = 'processing' AND lease_expires_at < %s AND expires_at > %s RETURNING id",
            [now, now],
        )
        requeued = len(cursor.fetchall())
        if requeued:
            notify(CHANNEL_JOB_CREATED)
    # served by the partial index job_live_deadline_idx
    overdue = list(
        Job.objects.filter(state__in=[JobState.PENDING, JobState.PROCESSING], expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:batch]
    )
    timed_out = sum(1 for job_id in overdue if job_time_out(job_id=job_id))
    return requeued, timed_out
