"""Writes for provider calls a job holds open beyond the usual: the fallback's, and late results.

A job's own provider call counts against that provider's cap while the job is ``processing``. Two
calls happen outside that: the fallback slot's provider (the job is still processing, but the call is
another provider's) and a call that runs on after the deadline for a late result (the job is already a
timeout). For both the worker records the provider in ``Job.open_call_provider``, which the claim
counts in place of the job's own provider (``jobs.services.jobs_claim``), and clears it when the call
ends. A worker that dies leaves it to ``open_calls_release_stale`` (housekeeping and cleanup).

A late result is recorded on the timed-out job (``late_result_at``, the result columns and a share
token), only by the claim that made the call and only once; the job stays ``timeout`` for the booth
and the statistics.
"""

from __future__ import annotations

import json
import uuid

from django.db import connection
from django.utils import timezone

from jobs.models import Job
from jobs.services import StoredResult
from jobs.states import JobState
from photochanger.sql import sql
from slots.models import StudioSettings

# After a job's deadline and grace, a call still marked open is a dead worker's: this much slack first.
STALE_OPEN_CALL_SLACK_SECONDS = 30


def job_open_call_set(*, job_id: uuid.UUID, claimed_by: str, claim_count: int, provider: str) -> bool:
    """Mark (``provider``) or clear ("") the call this claim holds open; True when the row was this claim's."""
    return (
        Job.objects.filter(id=job_id, claimed_by=claimed_by, claim_count=claim_count).update(
            open_call_provider=provider
        )
        == 1
    )


def job_attempts_record(
    *, job_id: uuid.UUID, claimed_by: str, claim_count: int, attempts: list[dict[str, object]], replace: bool
) -> bool:
    """Record this claim's provider attempts on its final job when its own finalize did not write them
    (the waiter wrote the timeout first), or (``replace``) what became of a call that ran on."""
    jobs = Job.objects.filter(id=job_id, claimed_by=claimed_by, claim_count=claim_count)
    if not replace:
        jobs = jobs.filter(attempts=[])
    return jobs.update(attempts=attempts) == 1


_LATE_RESULT_SQL = sql(
    """
UPDATE {job}
   SET {job.late_result_at} = %(now)s, {job.result_path} = %(path)s, {job.result_mime_type} = %(mime_type)s,
       {job.result_size_bytes} = %(size_bytes)s, {job.result_sha256} = %(sha256)s,
       {job.share_token} = %(share_token)s, {job.open_call_provider} = '',
       {job.attempts} = %(attempts)s::jsonb, {job.answered_by} = %(answered_by)s,
       {job.result_expires_at} = %(now)s + make_interval(hours => (
           SELECT {studio.result_retention_hours} FROM {studio} WHERE {studio.id} = 1))
 WHERE {job.id} = %(id)s AND {job.state} = %(timeout)s AND {job.result_path} = ''
   AND {job.claimed_by} = %(claimed_by)s AND {job.claim_count} = %(claim_count)s
""",
    job=Job,
    studio=StudioSettings,
)


def job_late_result_record(
    *,
    job_id: uuid.UUID,
    claimed_by: str,
    claim_count: int,
    result: StoredResult,
    share_token: str,
    attempts: list[dict[str, object]],
    answered_by: str,
) -> bool:
    """Keep a result that arrived after the deadline on the timed-out job; True when recorded.

    Only for a ``timeout`` job of this claim without a result (else the caller removes its files). The
    result is kept for the result retention from now, like an answer in time.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _LATE_RESULT_SQL,
            {
                "id": job_id,
                "now": timezone.now(),
                "path": result.path,
                "mime_type": result.mime_type,
                "size_bytes": result.size_bytes,
                "sha256": result.sha256,
                "share_token": share_token,
                "attempts": json.dumps(attempts),
                "answered_by": answered_by,
                "timeout": str(JobState.TIMEOUT),
                "claimed_by": claimed_by,
                "claim_count": claim_count,
            },
        )
        return cursor.rowcount == 1


_RELEASE_STALE_SQL = sql(
    """
UPDATE {job} SET {job.open_call_provider} = ''
 WHERE {job.open_call_provider} <> '' AND {job.state} <> ALL(%(live)s)
   AND {job.expires_at} + make_interval(secs => {job.late_result_grace_seconds} + %(slack)s) < %(now)s
""",
    job=Job,
)


def open_calls_release_stale() -> int:
    """Clear open-call marks of final jobs well past their deadline and grace (their worker died).

    Served by ``job_open_call_idx``. Returns how many were cleared. Safe to run from anywhere at once.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _RELEASE_STALE_SQL,
            {
                "live": [str(JobState.PENDING), str(JobState.PROCESSING)],
                "slack": STALE_OPEN_CALL_SLACK_SECONDS,
                "now": timezone.now(),
            },
        )
        return cursor.rowcount
