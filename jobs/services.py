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
from django.db.models import Q
from django.utils import timezone

from jobs.models import Job
from jobs.states import FINAL_STATES, LIVE_STATES, JobState, sources_for
from media import storage
from media.models import MediaObject
from photochanger import deadlines
from photochanger.errors import FailureReason
from photochanger.sql import column, sql
from slots.models import StudioSettings
from stats.models import DURATION_BUCKETS, IngestCounter, ProcessingLogEntry

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
    input_path: str  # the stored photo, a name in the media store
    input_size_bytes: int
    input_mime_type: str
    request_metadata: dict[str, Any]
    client_ip: str | None
    # A staff test run from the admin (jobs.test_runs): kept out of the booth statistics.
    is_test: bool = False
    # Issue 12: the slot's QR corner, its fallback slot's configuration ({} for none), the late-result
    # grace (0: late results not kept) and the prompt with the booth's fields filled in.
    share_qr: str = "off"
    fallback: dict[str, Any] = field(default_factory=dict)
    late_result_grace_seconds: int = 0
    prompt_sent: str = ""


# One statement, so one round trip: the job, its input media row, the log entry and the wake-up for
# workers commit together or not at all. (The hot path uses SQL here: the ORM's per-query overhead
# was most of the ingest overhead measured by bench/run.py.)
_CREATE_SQL = sql(
    """
WITH job AS (
    INSERT INTO {job} ({job.id}, {job.slot}, {job.state}, {job.provider}, {job.operation},
                       {job.provider_settings}, {job.templates}, {job.provider_job_reference},
                       {job.created_at}, {job.expires_at}, {job.claimed_by}, {job.claim_count},
                       {job.provider_calls}, {job.failure_reason}, {job.failure_message}, {job.result_path},
                       {job.result_mime_type}, {job.result_sha256}, {job.request_metadata}, {job.is_test},
                       {job.share_qr}, {job.fallback}, {job.late_result_grace_seconds}, {job.prompt_sent})
    VALUES (%(id)s, %(slot_id)s, 'pending', %(provider)s, %(operation)s, %(settings)s::jsonb,
            %(templates)s::jsonb, '', %(created_at)s, %(expires_at)s, '', 0, 0, '', '', '', '', '',
            %(metadata)s::jsonb, %(is_test)s, %(share_qr)s, %(fallback)s::jsonb, %(late_grace)s,
            %(prompt_sent)s)
    RETURNING {job.id} AS id
), media AS (
    INSERT INTO {media} ({media.id}, {media.job}, {media.kind}, {media.path}, {media.owns_file},
                         {media.mime_type}, {media.size_bytes}, {media.created_at}, {media.expires_at})
    SELECT %(media_id)s, job.id, 'input', %(path)s, true, %(mime_type)s, %(size)s, %(created_at)s,
           %(expires_at)s
      FROM job
), log AS (
    INSERT INTO {log} ({log.created_at}, {log.event}, {log.slot_id}, {log.job}, {log.job_state},
                       {log.failure_reason}, {log.client_ip}, {log.password_guess}, {log.details})
    SELECT %(now)s, 'ingest_accepted', %(slot_id)s, job.id, '', '', %(client_ip)s, false, %(details)s::jsonb
      FROM job
)
SELECT pg_notify(%(channel)s, '') FROM job
""",
    job=Job,
    media=MediaObject,
    log=ProcessingLogEntry,
)


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
                "is_test": new.is_test,
                "share_qr": new.share_qr,
                "fallback": json.dumps(new.fallback),
                "late_grace": new.late_result_grace_seconds,
                "prompt_sent": new.prompt_sent,
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
    thumbnail_path: str = ""  # its staff preview (media.thumbnails), "" when none could be made


@dataclass(frozen=True)
class Outcome:
    state: JobState
    failure_reason: str = ""
    failure_message: str = ""
    result: StoredResult | None = None
    provider_calls: int = 0
    # The input photo's staff preview, made by the worker after its claim (the photo is deleted here).
    input_thumbnail_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The share page of the result (jobs.share), "" without a result.
    share_token: str = ""
    # Each provider attempt (the slot's own, the fallback's) and the slot whose provider answered.
    attempts: list[dict[str, Any]] = field(default_factory=list)
    answered_by: str = ""


# The conditional UPDATE that makes one caller the winner, then in the same statement: the log entry,
# the release of the job's temporary media (their paths come back for deletion), the wake-up of the
# request waiting for this job, and of the workers when a capped provider has jobs waiting for the place
# this job held. A final job matches no row: the statement then does nothing.
_FINALIZE_SQL = sql(
    """
WITH job AS (
    UPDATE {job}
       SET {job.state} = %(state)s, {job.finalized_at} = %(now)s, {job.lease_expires_at} = NULL,
           {job.failure_reason} = %(failure_reason)s, {job.failure_message} = %(failure_message)s,
           {job.provider_calls} = {job.provider_calls} + %(provider_calls)s,
           {job.result_path} = %(result_path)s, {job.result_mime_type} = %(result_mime_type)s,
           {job.result_size_bytes} = %(result_size_bytes)s, {job.result_sha256} = %(result_sha256)s,
           {job.result_thumbnail_path} = %(result_thumbnail_path)s,
           {job.input_thumbnail_path} = %(input_thumbnail_path)s,
           {job.share_token} = %(share_token)s, {job.attempts} = %(attempts)s::jsonb,
           {job.answered_by} = %(answered_by)s,
           {job.result_expires_at} = CASE WHEN %(has_result)s
               THEN %(now)s + make_interval(hours => (
                   SELECT {studio.result_retention_hours} FROM {studio} WHERE {studio.id} = 1))
               END
     WHERE {job.id} = %(id)s AND {job.state} = ANY(%(sources)s) {{conditions}}
 RETURNING {job.id} AS id, {job.slot} AS slot_id, {job.provider} AS provider, {job.created_at} AS created_at,
           {job.claimed_at} AS claimed_at, {job.provider_calls} AS provider_calls, {job.is_test} AS is_test
), log AS (
    INSERT INTO {log} ({log.created_at}, {log.event}, {log.slot_id}, {log.job}, {log.job_state},
                       {log.failure_reason}, {log.duration_ms}, {log.details})
    SELECT %(now)s, 'job_finished', job.slot_id, job.id, %(state)s, %(failure_reason)s,
           (extract(epoch FROM %(now)s - job.created_at) * 1000)::integer, %(details)s::jsonb
      FROM job
), counted AS (
    -- the counts behind /metrics (stats.metrics): outcome, total-time and queue-wait buckets
    INSERT INTO {counter} ({counter.slot_id}, {counter.provider}, {counter.outcome}, {counter.duration_bucket},
                           {counter.wait_bucket}, {counter.count}, {counter.duration_sum_ms},
                           {counter.wait_sum_ms}, {counter.provider_calls})
    SELECT job.slot_id, job.provider, %(state)s,
           CASE WHEN %(state)s = 'succeeded'
                THEN width_bucket(extract(epoch FROM %(now)s - job.created_at), %(buckets)s::float8[]) + 1
                ELSE 0 END,
           CASE WHEN job.claimed_at IS NOT NULL
                THEN width_bucket(extract(epoch FROM job.claimed_at - job.created_at), %(buckets)s::float8[]) + 1
                ELSE 0 END,
           1,
           CASE WHEN %(state)s = 'succeeded'
                THEN (extract(epoch FROM %(now)s - job.created_at) * 1000)::bigint ELSE 0 END,
           COALESCE((extract(epoch FROM job.claimed_at - job.created_at) * 1000)::bigint, 0),
           job.provider_calls
      FROM job WHERE NOT job.is_test
        ON CONFLICT ({counter.slot_id}, {counter.provider}, {counter.outcome}, {counter.duration_bucket},
                     {counter.wait_bucket})
        DO UPDATE SET {counter.count} = {counter}.{counter.count} + 1,
                      {counter.duration_sum_ms} = {counter}.{counter.duration_sum_ms} + excluded.{counter.duration_sum_ms},
                      {counter.wait_sum_ms} = {counter}.{counter.wait_sum_ms} + excluded.{counter.wait_sum_ms},
                      {counter.provider_calls} = {counter}.{counter.provider_calls} + excluded.{counter.provider_calls}
), wake AS (
    -- jobs_claim may have left this provider's jobs pending at its cap (job_pending_queue_idx)
    SELECT pg_notify(%(created_channel)s, '') FROM job
     WHERE job.provider IN (
               SELECT jsonb_object_keys({studio.provider_concurrency}) FROM {studio} WHERE {studio.id} = 1)
       AND EXISTS (SELECT 1 FROM {job} AS waiting
                    WHERE waiting.{job.state} = 'pending' AND waiting.{job.provider} = job.provider)
), released AS (
    -- keep_input: the worker still makes the input's thumbnail; it releases the input itself afterwards
    UPDATE {media} SET {media.deleted_at} = %(now)s
     WHERE {media.job} IN (SELECT id FROM job) AND {media.deleted_at} IS NULL
       AND NOT (%(keep_input)s AND {media.kind} = 'input')
 RETURNING {media.path} AS path, {media.owns_file} AS owns_file
)
SELECT 'job' AS kind, pg_notify(%(channel)s, %(id_text)s)::text AS value FROM job
UNION ALL
SELECT 'wake', '' FROM wake
UNION ALL
SELECT 'file', path FROM released WHERE owns_file
""",
    job=Job,
    log=ProcessingLogEntry,
    media=MediaObject,
    studio=StudioSettings,
    counter=IngestCounter,
)


# Columns of the conditions job_finalize adds to the statement's WHERE.
_EXPIRES_AT = column(Job, "expires_at")
_CLAIMED_BY = column(Job, "claimed_by")
_CLAIM_COUNT = column(Job, "claim_count")


def job_finalize(
    *,
    job_id: uuid.UUID,
    outcome: Outcome,
    claimed_by: str | None = None,
    claim_count: int | None = None,
    keep_input: bool = False,
) -> bool:
    """Move a live job to its final state if nobody else has; True when this call won.

    ``succeeded`` only lands before ``expires_at`` (a late provider answer is ignored) and, when
    ``claimed_by``/``claim_count`` are given, only for that claim (not for an older claim of a job that
    was requeued and claimed again). ``timeout`` only lands once the
    deadline has passed. On a win the input files are deleted (unless ``keep_input``: the worker's input
    thumbnail is still being made, and ``job_input_thumbnail_record`` releases the input afterwards; if the
    worker dies first, cleanup does), the outcome's thumbnails recorded and waiters are notified; on a
    loss nothing changes (the caller removes the files it made).
    """
    if outcome.state not in FINAL_STATES:
        raise ValueError(f"{outcome.state} is not a final state")
    now = timezone.now()
    conditions = []
    if outcome.state == JobState.SUCCEEDED:
        conditions.append(f"AND {_EXPIRES_AT} > %(now)s")
    if outcome.state == JobState.TIMEOUT:
        conditions.append(f"AND {_EXPIRES_AT} <= %(now)s")
    if claimed_by is not None:
        conditions.append(f"AND {_CLAIMED_BY} = %(claimed_by)s")
    if claim_count is not None:
        conditions.append(f"AND {_CLAIM_COUNT} = %(claim_count)s")
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
                "result_thumbnail_path": result.thumbnail_path if result else "",
                "input_thumbnail_path": outcome.input_thumbnail_path,
                "share_token": outcome.share_token if result else "",
                "attempts": json.dumps(outcome.attempts),
                "answered_by": outcome.answered_by,
                "details": json.dumps(outcome.extra),
                "buckets": list(DURATION_BUCKETS),
                "channel": CHANNEL_JOB_FINISHED,
                "created_channel": CHANNEL_JOB_CREATED,
                "keep_input": keep_input,
            },
        )
        rows = cursor.fetchall()
    won = any(kind == "job" for kind, _value in rows)
    for kind, path in rows:
        if kind == "file":
            storage.delete(path)
    return won


# After a finalize that kept the input for its thumbnail: record the thumbnail (only for the claim that
# finalized the job, only once) and release the input, in one statement.
_INPUT_THUMBNAIL_SQL = sql(
    """
WITH thumbnail AS (
    UPDATE {job} SET {job.input_thumbnail_path} = %(path)s
     WHERE {job.id} = %(id)s AND %(path)s <> '' AND {job.input_thumbnail_path} = ''
       AND {job.state} = ANY(%(final)s) AND {job.claimed_by} = %(claimed_by)s
       AND {job.claim_count} = %(claim_count)s
 RETURNING {job.id}
), released AS (
    UPDATE {media} SET {media.deleted_at} = %(now)s
     WHERE {media.job} = %(id)s AND {media.kind} = 'input' AND {media.deleted_at} IS NULL
 RETURNING {media.path} AS path, {media.owns_file} AS owns_file
)
SELECT 'thumbnail', '' FROM thumbnail
UNION ALL
SELECT 'file', path FROM released WHERE owns_file
""",
    job=Job,
    media=MediaObject,
)


def job_input_thumbnail_record(*, job_id: uuid.UUID, claimed_by: str, claim_count: int, path: str) -> bool:
    """Record the input thumbnail made after the job's finalize (``keep_input``) and release its input.

    Only the claim that finalized the job records it, and only if it has none; True when recorded (else
    the caller removes the file). The input is deleted either way.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _INPUT_THUMBNAIL_SQL,
            {
                "id": job_id,
                "path": path,
                "final": [str(state) for state in FINAL_STATES],
                "claimed_by": claimed_by,
                "claim_count": claim_count,
                "now": timezone.now(),
            },
        )
        rows = cursor.fetchall()
    for kind, file_path in rows:
        if kind == "file":
            storage.delete(file_path)
    return any(kind == "thumbnail" for kind, _value in rows)


def job_result_thumbnail_record(*, job_id: uuid.UUID, path: str) -> bool:
    """Record a result's preview (succeeded, or late), made after it was recorded; True when recorded.

    Only while the result is still stored and the job has none (else the caller removes the file).
    """
    recorded = (
        Job.objects.filter(id=job_id, result_deleted_at__isnull=True, result_thumbnail_path="")
        .filter(Q(state=JobState.SUCCEEDED) | Q(state=JobState.TIMEOUT, late_result_at__isnull=False))
        .update(result_thumbnail_path=path)
    )
    return recorded == 1


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
    """Finalize a job whose window has ended without a result; False when someone finalized it first.

    Refused (False) before the job's ``expires_at``: a timeout is written only once the deadline passed.
    """
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
    input_path: str  # a name in the media store
    input_mime_type: str
    claim_count: int  # which claim of the job this is: only this claim may finalize it
    input_size_bytes: int = 0
    created_at: datetime | None = None  # when the booth's request arrived
    share_qr: str = "off"
    fallback: dict[str, Any] = field(default_factory=dict)
    late_result_grace_seconds: int = 0
    prompt_sent: str = ""


# pg_advisory_xact_lock(class, hashtext(provider)): the first key keeps these locks apart from others.
PROVIDER_CAP_LOCK_CLASS = 0x50434150  # "PCAP"

# Provider caps live in the studio settings ({"gemini": 64, …}; a provider not listed has no cap). The
# claimer first takes the lock of every capped provider, in name order (PostgreSQL evaluates a volatile
# function in the select list after the ORDER BY), so claimers queue behind each other instead of
# deadlocking; the claim statement that follows takes a new snapshot, sees every claim committed before
# the locks were granted, and cannot push a provider past its cap.
_PROVIDER_CAP_LOCKS_SQL = sql(
    """
SELECT pg_advisory_xact_lock(%(lock_class)s, hashtext(capped.provider))
  FROM (SELECT jsonb_object_keys({studio.provider_concurrency}) AS provider
          FROM {studio} WHERE {studio.id} = 1) AS capped
 ORDER BY capped.provider
""",
    studio=StudioSettings,
)

# The job rows are the only record of calls in flight: a provider's `processing` jobs count against its
# cap, and the oldest pending jobs are claimed up to the room left. Caps are read here, so a change by
# staff applies to the next claim.
_CLAIM_SQL = sql(
    """
WITH caps AS (
    SELECT entry.key AS provider, GREATEST(0, LEAST(entry.value::numeric, 1000000))::integer AS places
      FROM {studio} AS studio, jsonb_each(studio.{studio.provider_concurrency}) AS entry
     WHERE studio.{studio.id} = 1 AND jsonb_typeof(entry.value) = 'number'
), in_flight AS (
    -- a processing job's call to its own provider (partial index job_processing_provider_idx), and calls
    -- a job holds open to another provider or past its deadline (job_open_call_idx: fallback, late result)
    SELECT calls.provider, count(*) AS calls
      FROM (SELECT {job.provider} AS provider FROM {job}
             WHERE {job.state} = 'processing' AND {job.open_call_provider} = ''
            UNION ALL
            SELECT {job.open_call_provider} FROM {job} WHERE {job.open_call_provider} <> '') AS calls
     WHERE calls.provider IN (SELECT provider FROM caps)
     GROUP BY calls.provider
), room AS (
    SELECT caps.provider, GREATEST(caps.places - COALESCE(in_flight.calls, 0), 0) AS places
      FROM caps LEFT JOIN in_flight ON in_flight.provider = caps.provider
), too_slow AS (
    -- providers whose calls take at least this long: a job with less time left is not started
    SELECT * FROM unnest(%(slow_providers)s::text[], %(slow_seconds)s::float8[]) AS slow(provider, seconds)
), candidates AS (
    -- served by the partial index job_pending_queue_idx
    SELECT {job.id} AS id, {job.provider} AS provider, {job.created_at} AS created_at
      FROM {job}
     WHERE {job.state} = 'pending' AND {job.expires_at} > %(now)s
       AND {job.provider} NOT IN (SELECT provider FROM room WHERE places = 0)
       AND NOT EXISTS (SELECT 1 FROM too_slow
                        WHERE too_slow.provider = {job}.{job.provider}
                          AND {job}.{job.expires_at} <= %(now)s + make_interval(secs => too_slow.seconds))
     ORDER BY {job.created_at}
     LIMIT %(scan)s
       FOR UPDATE SKIP LOCKED
), chosen AS (
    SELECT ranked.id
      FROM (SELECT id, provider, created_at,
                   row_number() OVER (PARTITION BY provider ORDER BY created_at) AS place
              FROM candidates) AS ranked
      LEFT JOIN room ON room.provider = ranked.provider
     WHERE room.provider IS NULL OR ranked.place <= room.places
     ORDER BY ranked.created_at
     LIMIT %(limit)s
), claimed AS (
    UPDATE {job}
       SET {job.state} = 'processing', {job.claimed_at} = %(now)s, {job.lease_expires_at} = %(lease)s,
           {job.claimed_by} = %(worker)s, {job.claim_count} = {job.claim_count} + 1
     WHERE {job.id} IN (SELECT id FROM chosen)
 RETURNING {job.id} AS id, {job.slot} AS slot_id, {job.provider} AS provider,
           {job.operation} AS operation, {job.provider_settings} AS provider_settings,
           {job.templates} AS templates, {job.expires_at} AS expires_at, {job.claim_count} AS claim_count,
           {job.created_at} AS created_at, {job.share_qr} AS share_qr, {job.fallback} AS fallback,
           {job.late_result_grace_seconds} AS late_grace, {job.prompt_sent} AS prompt_sent
)
SELECT claimed.id, claimed.slot_id, claimed.provider, claimed.operation, claimed.provider_settings,
       claimed.templates, claimed.expires_at, media.{media.path}, media.{media.mime_type}, claimed.claim_count,
       media.{media.size_bytes}, claimed.created_at, claimed.share_qr, claimed.fallback, claimed.late_grace,
       claimed.prompt_sent
  FROM claimed
  LEFT JOIN {media} AS media
    ON media.{media.job} = claimed.id AND media.{media.kind} = 'input' AND media.{media.deleted_at} IS NULL
 ORDER BY claimed.created_at
""",
    job=Job,
    media=MediaObject,
    studio=StudioSettings,
)


def jobs_claim(
    *, worker: str, limit: int, lease: timedelta, min_remaining: dict[str, float] | None = None
) -> list[ClaimedJob]:
    """Claim up to ``limit`` pending jobs for ``worker``, oldest first, within the providers' caps.

    One short transaction: the capped providers' advisory locks, then one claim statement
    (``FOR UPDATE SKIP LOCKED``), committed at once. A capped provider gets at most ``cap − jobs
    processing`` more; expired jobs are skipped (cleanup times them out), and so are jobs with less
    time left than ``min_remaining[provider]`` seconds (a call that cannot finish is not paid for: the
    job times out at its deadline as it would have). The caller works with no transaction open and
    finalizes with ``job_finalize``.
    """
    slow = min_remaining or {}
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_PROVIDER_CAP_LOCKS_SQL, {"lock_class": PROVIDER_CAP_LOCK_CLASS})
        cursor.execute(
            _CLAIM_SQL,
            {
                "now": now,
                "lease": now + lease,
                "worker": worker,
                "limit": limit,
                # Look past jobs of a provider with little room left to reach other providers' jobs.
                "scan": limit * 4,
                "slow_providers": list(slow),
                "slow_seconds": list(slow.values()),
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
            input_size_bytes=row[10] or 0,
            created_at=row[11],
            share_qr=row[12],
            fallback=_json(row[13]) or {},
            late_result_grace_seconds=row[14],
            prompt_sent=row[15],
        )
        for row in rows
    ]


def _json(value: Any) -> Any:
    # Django's PostgreSQL backend hands jsonb to Python as text (JSONField decodes it itself).
    return json.loads(value) if isinstance(value, str | bytes) else value


def jobs_renew_leases(*, worker: str, claims: dict[uuid.UUID, int], lease: timedelta) -> set[uuid.UUID]:
    """Extend the leases of the claims ``worker`` holds (job id → claim count).

    Returns the ids whose claim is still current: a job missing from the answer was finalized,
    requeued or claimed again since, and its worker must stop working on it.
    """
    if not claims:
        return set()
    until = timezone.now() + lease
    ours = Job.objects.filter(id__in=list(claims), state=JobState.PROCESSING, claimed_by=worker)
    ours.update(lease_expires_at=until)
    # Read back what this renewal wrote: a job finalized or requeued in between is not ours any more.
    current = ours.filter(lease_expires_at=until).values_list("id", "claim_count")
    return {job_id for job_id, claim_count in current if claims[job_id] == claim_count}


def jobs_recover_stale(*, batch: int = 200, requeue: bool = True) -> tuple[int, int]:
    """Requeue jobs whose worker lost its lease while time remains; time out jobs past their deadline.

    ``requeue=False`` only times out: a worker just back from a database outage leaves lapsed leases
    alone until the other workers have had the time to renew theirs. Safe to run from every worker and
    from cleanup at once. Returns (requeued, timed_out).
    """
    now = timezone.now()
    requeued = 0
    with transaction.atomic():
        if requeue:
            requeued = Job.objects.filter(
                state=JobState.PROCESSING, lease_expires_at__lt=now, expires_at__gt=now
            ).update(state=JobState.PENDING, lease_expires_at=None, claimed_by="", open_call_provider="")
        if requeued:
            notify(CHANNEL_JOB_CREATED)
    # served by the partial index job_live_deadline_idx
    overdue = list(
        Job.objects.filter(state__in=list(LIVE_STATES), expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:batch]
    )
    timed_out = sum(1 for job_id in overdue if job_time_out(job_id=job_id))
    from jobs.late_results import open_calls_release_stale  # it builds on this module

    open_calls_release_stale()
    return requeued, timed_out
