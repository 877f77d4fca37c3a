"""Writes to jobs: creation at ingest, claiming and leasing by workers, finalization by whoever is first.

Every state change is a conditional UPDATE whose ``WHERE state IN (…)`` comes from ``jobs.states``; the
row count says whether this caller won. A final job never changes again.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from jobs.models import Job
from jobs.states import FINAL_STATES, LIVE_STATES, JobState, sources_for
from media import storage
from photochanger import deadlines
from photochanger.errors import FailureReason

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
    slot_id: str
    provider: str
    operation: str
    provider_settings: dict[str, Any]
    templates: list[dict[str, str]]
    sync_response_seconds: int
    received_at: datetime  # when the booth's request arrived: the booth's own timeout runs from there
    input_path: str  # the stored photo, under MEDIA_ROOT
    input_size_bytes: int
    input_mime_type: str
    request_metadata: dict[str, Any]
    client_ip: str | None


# One statement, so one round trip: the job, its input media row, the log entry and the wake-up for
# workers commit together or not at all. (The hot path uses SQL here: the ORM's per-query overhead
# was most of the ingest overhead measured by bench/run.py.)
_CREATE_SQL = """
WITH job AS (
    INSERT INTO jobs_job (id, slot_id, state, provider, operation, provider_settings, templates,
                          provider_job_reference, created_at, expires_at, claimed_by, claim_count,
                          provider_calls, failure_reason, failure_message, result_path, result_mime_type,
                          result_sha256, request_metadata)
    VALUES (%(id)s, %(slot_id)s, 'pending', %(provider)s, %(operation)s, %(settings)s::jsonb,
            %(templates)s::jsonb, '', %(created_at)s, %(expires_at)s, '', 0, 0, '', '', '', '', '',
            %(metadata)s::jsonb)
    RETURNING id
), media AS (
    INSERT INTO media_mediaobject (id, job_id, kind, path, owns_file, mime_type, size_bytes, created_at, expires_at)
    SELECT %(media_id)s, job.id, 'input', %(path)s, true, %(mime_type)s, %(size)s, %(created_at)s, %(expires_at)s
      FROM job
), log AS (
    INSERT INTO stats_processinglogentry (created_at, event, slot_id, job_id, job_state, failure_reason,
                                          client_ip, password_guess, details)
    SELECT %(now)s, 'ingest_accepted', %(slot_id)s, job.id, '', '', %(client_ip)s, false, %(details)s::jsonb
      FROM job
)
SELECT pg_notify(%(channel)s, '') FROM job
"""


def job_create(*, new: NewJobInput) -> datetime:
    """Create the pending job for an already stored input photo, with its deadline, and wake the workers.

    Returns the job's ``expires_at`` (``received_at`` + the sync window). The caller stored the photo
    and removes it again if this raises: no orphan file, no job without its input.
    """
    from media.models import new_media_id

    created_at = new.received_at
    expires_at = deadlines.job_expires_at(
        created_at=created_at, sync_response=timedelta(seconds=new.sync_response_seconds)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _CREATE_SQL,
            {
                "id": new.job_id,
                "slot_id": new.slot_id,
                "provider": new.provider,
                "operation": new.operation,
                "settings": json.dumps(new.provider_settings),
                "templates": json.dumps(new.templates),
                "created_at": created_at,
                "expires_at": expires_at,
                "now": timezone.now(),
                "metadata": json.dumps(new.request_metadata),
                "media_id": new_media_id(),
                "path": new.input_path,
                "mime_type": new.input_mime_type,
                "size": new.input_size_bytes,
                "client_ip": new.client_ip,
                "details": json.dumps({"size_bytes": new.input_size_bytes, "mime_type": new.input_mime_type}),
                "channel": CHANNEL_JOB_CREATED,
            },
        )
    return expires_at


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


# The conditional UPDATE that makes one caller the winner, then in the same statement: the log entry,
# the provider permit it held, the release of the job's temporary media (their paths come back for
# deletion), and the wake-up of the request waiting for this job. A final job matches no row: the statement then does nothing.
_FINALIZE_SQL = """
WITH job AS (
    UPDATE jobs_job
       SET state = %(state)s, finalized_at = %(now)s, lease_expires_at = NULL,
           failure_reason = %(failure_reason)s, failure_message = %(failure_message)s,
           provider_calls = provider_calls + %(provider_calls)s,
           result_path = %(result_path)s, result_mime_type = %(result_mime_type)s,
           result_size_bytes = %(result_size_bytes)s, result_sha256 = %(result_sha256)s,
           result_expires_at = CASE WHEN %(has_result)s
               THEN %(now)s + make_interval(hours => (SELECT result_retention_hours FROM slots_studiosettings WHERE id = 1))
               END
     WHERE id = %(id)s AND state = ANY(%(sources)s) {conditions}
 RETURNING id, slot_id, created_at
), log AS (
    INSERT INTO stats_processinglogentry (created_at, event, slot_id, job_id, job_state, failure_reason,
                                          duration_ms, details)
    SELECT %(now)s, 'job_finished', job.slot_id, job.id, %(state)s, %(failure_reason)s,
           (extract(epoch FROM %(now)s - job.created_at) * 1000)::integer, %(details)s::jsonb
      FROM job
), permits AS (
    UPDATE providers_providerpermit SET job_id = NULL, expires_at = NULL WHERE job_id IN (SELECT id FROM job)
 RETURNING id
), wake AS (
    -- a place in a provider's cap is free again: wake workers if jobs are waiting (job_pending_queue_idx)
    SELECT pg_notify(%(created_channel)s, '') FROM permits
     WHERE EXISTS (SELECT 1 FROM jobs_job WHERE state = 'pending') LIMIT 1
), released AS (
    UPDATE media_mediaobject SET deleted_at = %(now)s
     WHERE job_id IN (SELECT id FROM job) AND deleted_at IS NULL
 RETURNING path, owns_file
)
SELECT 'job' AS kind, pg_notify(%(channel)s, %(id_text)s)::text AS value FROM job
UNION ALL
SELECT 'wake', '' FROM wake
UNION ALL
SELECT 'file', path FROM released WHERE owns_file
"""


def job_finalize(
    *, job_id: uuid.UUID, outcome: Outcome, claimed_by: str | None = None, claim_count: int | None = None
) -> bool:
    """Move a live job to its final state if nobody else has; True when this call won.

    ``succeeded`` only lands before ``expires_at`` (a late provider answer is ignored) and, when
    ``claimed_by``/``claim_count`` are given, only for that claim (not for an older claim of a job that
    was requeued and claimed again). ``timeout`` only lands once the
    deadline has passed. On a win the input files are deleted and waiters are notified.
    """
    if outcome.state not in FINAL_STATES:
        raise ValueError(f"{outcome.state} is not a final state")
    now = timezone.now()
    conditions = []
    if outcome.state == JobState.SUCCEEDED:
        conditions.append("AND expires_at > %(now)s")
    if outcome.state == JobState.TIMEOUT:
        conditions.append("AND expires_at <= %(now)s")
    if claimed_by is not None:
        conditions.append("AND claimed_by = %(claimed_by)s")
    if claim_count is not None:
        conditions.append("AND claim_count = %(claim_count)s")
    result = outcome.result
    with connection.cursor() as cursor:
        cursor.execute(
            _FINALIZE_SQL.format(conditions=" ".join(conditions)),
            {
                "id": job_id,
                "id_text": str(job_id),
                "state": str(outcome.state),
                "sources": sources_for(outcome.state),
                "now": now,
                "claimed_by": claimed_by,
                "claim_count": claim_count,
                "failure_reason": outcome.failure_reason,
                "failure_message": outcome.failure_message[:500],
                "provider_calls": outcome.provider_calls,
                "has_result": result is not None,
                "result_path": result.path if result else "",
                "result_mime_type": result.mime_type if result else "",
                "result_size_bytes": result.size_bytes if result else None,
                "result_sha256": result.sha256 if result else "",
                "details": json.dumps(outcome.extra),
                "channel": CHANNEL_JOB_FINISHED,
                "created_channel": CHANNEL_JOB_CREATED,
            },
        )
        rows = cursor.fetchall()
    won = any(kind == "job" for kind, _value in rows)
    for kind, path in rows:
        if kind == "file":
            storage.delete(path)
    return won


def job_set_provider_reference(*, job_id: uuid.UUID, reference: str) -> None:
    """Remember the provider's own id for the job (e.g. Turbotext's queueid) while it is live."""
    Job.objects.filter(id=job_id, state=JobState.PROCESSING).update(provider_job_reference=reference[:128])


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
    id: uuid.UUID
    slot_id: str
    provider: str
    operation: str
    provider_settings: dict[str, Any]
    templates: list[dict[str, str]]
    expires_at: datetime
    input_path: str  # under MEDIA_ROOT
    input_mime_type: str
    claim_count: int  # which claim of the job this is: only this claim may finalize it


# One statement claims jobs and, for providers with a concurrency cap, a free permit for each: a job
# whose provider is at its cap stays pending (and costs no provider call) until a permit frees up.
_CLAIM_SQL = """
WITH caps AS (
    SELECT * FROM unnest(%(capped)s::text[], %(caps)s::integer[]) AS cap(provider, places)
), candidates AS (
    -- served by the partial index job_pending_queue_idx
    SELECT id, provider, created_at, expires_at FROM jobs_job
     WHERE state = 'pending' AND expires_at > %(now)s
     ORDER BY created_at
     LIMIT %(scan)s
       FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT id, provider, created_at, expires_at,
           row_number() OVER (PARTITION BY provider ORDER BY created_at) AS place
      FROM candidates
), free AS (
    -- at most as many free permits per provider as there are candidates (unique provider/number index)
    SELECT available.id AS permit_id, available.provider,
           row_number() OVER (PARTITION BY available.provider ORDER BY available.number) AS place
      FROM caps
     CROSS JOIN LATERAL (
            SELECT permit.id, permit.provider, permit.number
              FROM providers_providerpermit AS permit
             WHERE permit.provider = caps.provider AND permit.number < caps.places
               AND (permit.job_id IS NULL OR permit.expires_at < %(now)s)
             ORDER BY permit.number
             LIMIT (SELECT count(*) FROM candidates WHERE candidates.provider = caps.provider)
               FOR UPDATE SKIP LOCKED) AS available
), chosen AS (
    SELECT ranked.id, ranked.expires_at, free.permit_id
      FROM ranked
      LEFT JOIN caps ON caps.provider = ranked.provider
      LEFT JOIN free ON free.provider = ranked.provider AND free.place = ranked.place
     WHERE caps.provider IS NULL OR free.permit_id IS NOT NULL
     ORDER BY ranked.created_at
     LIMIT %(limit)s
), permits AS (
    UPDATE providers_providerpermit AS permit
       SET job_id = chosen.id, expires_at = chosen.expires_at
      FROM chosen
     WHERE permit.id = chosen.permit_id
), claimed AS (
    UPDATE jobs_job
       SET state = 'processing', claimed_at = %(now)s, lease_expires_at = %(lease)s,
           claimed_by = %(worker)s, claim_count = claim_count + 1
     WHERE id IN (SELECT id FROM chosen)
 RETURNING id, slot_id, provider, operation, provider_settings, templates, expires_at, claim_count
)
SELECT claimed.id, claimed.slot_id, claimed.provider, claimed.operation, claimed.provider_settings,
       claimed.templates, claimed.expires_at, media.path, media.mime_type, claimed.claim_count
  FROM claimed
  LEFT JOIN media_mediaobject AS media
    ON media.job_id = claimed.id AND media.kind = 'input' AND media.deleted_at IS NULL
"""


def jobs_claim(
    *, worker: str, limit: int, lease: timedelta, caps: dict[str, int] | None = None
) -> list[ClaimedJob]:
    """Claim up to ``limit`` pending jobs for ``worker`` (SKIP LOCKED); one statement, committed at once.

    ``caps`` (provider → places across all workers): a job of a capped provider is claimed only with a
    free permit, which finalize gives back. The caller works with no transaction open and finalizes
    with ``job_finalize``.
    """
    now = timezone.now()
    caps = caps or {}
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "now": now,
                "lease": now + lease,
                "worker": worker,
                "limit": limit,
                # Look past jobs waiting for a saturated provider to reach other providers' jobs.
                "scan": limit * 4,
                "capped": list(caps),
                "caps": list(caps.values()),
            },
        )
        rows = cursor.fetchall()
    return [
        ClaimedJob(
            id=row[0],
            slot_id=row[1],
            provider=row[2],
            operation=row[3],
            provider_settings=_json(row[4]),
            templates=_json(row[5]),
            expires_at=row[6],
            input_path=row[7] or "",
            input_mime_type=row[8] or "",
            claim_count=row[9],
        )
        for row in rows
    ]


def _json(value: Any) -> Any:
    # Django's PostgreSQL backend hands jsonb to Python as text (JSONField decodes it itself).
    return json.loads(value) if isinstance(value, str | bytes) else value


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
            "WITH requeued AS ("
            "  UPDATE jobs_job SET state = 'pending', lease_expires_at = NULL, claimed_by = ''"
            "   WHERE state = 'processing' AND lease_expires_at < %s AND expires_at > %s RETURNING id"
            "), permits AS ("
            "  UPDATE providers_providerpermit SET job_id = NULL, expires_at = NULL"
            "   WHERE job_id IN (SELECT id FROM requeued)"
            ") SELECT id FROM requeued",
            [now, now],
        )
        requeued = len(cursor.fetchall())
        if requeued:
            notify(CHANNEL_JOB_CREATED)
    # served by the partial index job_live_deadline_idx
    overdue = list(
        Job.objects.filter(state__in=list(LIVE_STATES), expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:batch]
    )
    timed_out = sum(1 for job_id in overdue if job_time_out(job_id=job_id))
    return requeued, timed_out
