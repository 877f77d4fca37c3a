"""Deadline arithmetic for jobs: the one place every deadline of the brief is computed.

Plain functions on aware datetimes; no Django, no database. Every deadline is computed once, when the
job is created (or finalized, for the result), and stored on the row.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def job_expires_at(*, created_at: datetime, sync_response: timedelta) -> datetime:
    """Hard deadline of a job, its input file and any temporary public link: created + T_sync_response."""
    _require_aware(created_at, "created_at")
    if sync_response <= timedelta(0):
        raise ValueError("sync_response must be positive")
    return created_at + sync_response


def artifact_expires_at(*, created_at: datetime, job_expires_at: datetime, limit: timedelta) -> datetime:
    """Expiry of a temporary artifact (public link, provider input): min(job deadline, created + limit)."""
    _require_aware(created_at, "created_at")
    _require_aware(job_expires_at, "job_expires_at")
    if limit < timedelta(0):
        raise ValueError("limit must not be negative")
    return min(job_expires_at, created_at + limit)


def result_expires_at(*, finalized_at: datetime, retention: timedelta) -> datetime:
    """When a stored result stops being downloadable: finalized + T_result_retention."""
    _require_aware(finalized_at, "finalized_at")
    if retention <= timedelta(0):
        raise ValueError("retention must be positive")
    return finalized_at + retention


def remaining_seconds(*, deadline: datetime, now: datetime) -> float:
    """Seconds left until ``deadline`` (never negative): the timeout handed to every provider call."""
    _require_aware(deadline, "deadline")
    _require_aware(now, "now")
    return max(0.0, (deadline - now).total_seconds())
