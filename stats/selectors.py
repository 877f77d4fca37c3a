"""Reads of the processing log that decide things on the ingest hot path (password lockout)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

from photochanger.sql import sql
from stats.models import LogEvent, ProcessingLogEntry

# Every booth photo asks this, so it is one statement (the ORM's two counting queries cost more than the
# rest of the accept step), counting at most up to each limit: cheap even while someone guesses hard.
# Served by log_password_guesses_idx and log_all_password_guesses_idx.
_PASSWORD_GUESSES_SQL = sql(
    """
SELECT (SELECT count(*) FROM (SELECT 1 FROM {log}
                               WHERE {log.password_guess} AND {log.client_ip} = %(client_ip)s
                                 AND {log.created_at} >= %(since)s
                               LIMIT %(client_limit)s) AS from_this_client),
       (SELECT count(*) FROM (SELECT 1 FROM {log}
                               WHERE {log.password_guess} AND {log.created_at} >= %(since)s
                               LIMIT %(all_limit)s) AS from_everyone)
""",
    log=ProcessingLogEntry,
)


@dataclass(frozen=True)
class PasswordGuesses:
    from_this_client: int
    from_everyone: int


def password_guesses_count(
    *, since: datetime, client_ip: str | None, client_limit: int, all_limit: int
) -> PasswordGuesses:
    """New wrong ingest passwords since ``since``: from this client and from all, each up to its limit."""
    with connection.cursor() as cursor:
        cursor.execute(
            _PASSWORD_GUESSES_SQL,
            {"client_ip": client_ip, "since": since, "client_limit": client_limit, "all_limit": all_limit},
        )
        mine, everyone = cursor.fetchone()
    return PasswordGuesses(from_this_client=int(mine), from_everyone=int(everyone))


def client_recently_accepted(*, client_ip: str | None, since: datetime) -> bool:
    """Whether this client had a photo accepted since ``since`` (served by log_client_accepted_idx)."""
    if client_ip is None:
        return False
    return ProcessingLogEntry.objects.filter(
        event=LogEvent.INGEST_ACCEPTED, client_ip=client_ip, created_at__gte=since
    ).exists()


# --- Statistics over time (GET /api/stats/…, the admin dashboard) ---------------------------------

GROUPINGS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
# Buckets start on whole hours / days (UTC) and on Mondays.
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
MAX_BUCKETS = 2000

# One statement per report: every bucket (empty ones included, from generate_series) and the totals
# (the empty grouping set) of the accepted jobs, with the refusals by reason beside them. Percentiles
# are PostgreSQL's percentile_cont over the succeeded jobs. Test runs from the admin are left out.
# Served by job_created_report_idx and the log's created_at index.
_REPORT_SQL = """
WITH buckets AS (
    SELECT generate_series(date_bin(%(step)s, %(start)s, %(origin)s), %(end)s - interval '1 microsecond',
                           %(step)s) AS start
), jobs AS (
    SELECT date_bin(%(step)s, job.{job.created_at}, %(origin)s) AS start, job.{job.state} AS state,
           job.{job.failure_reason} AS failure_reason,
           extract(epoch FROM job.{job.finalized_at} - job.{job.created_at}) * 1000 AS total_ms,
           extract(epoch FROM job.{job.finalized_at} - job.{job.claimed_at}) * 1000 AS provider_ms,
           extract(epoch FROM job.{job.claimed_at} - job.{job.created_at}) * 1000 AS wait_ms
      FROM {job} AS job
     WHERE job.{job.created_at} >= %(start)s AND job.{job.created_at} < %(end)s
       AND NOT job.{job.is_test} {job_filter}
), job_figures AS (
    SELECT start, count(*) AS ingests,
           count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE state = 'timeout') AS timeouts,
           count(*) FILTER (WHERE state = 'failed' AND failure_reason = 'provider_error') AS provider_errors,
           count(*) FILTER (WHERE state = 'failed' AND failure_reason <> 'provider_error') AS internal_errors,
           count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE state IN ('pending', 'processing')) AS live,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY total_ms) FILTER (WHERE state = 'succeeded') AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY total_ms) FILTER (WHERE state = 'succeeded') AS p95_ms,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY provider_ms)
               FILTER (WHERE state = 'succeeded') AS provider_p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_ms)
               FILTER (WHERE wait_ms IS NOT NULL) AS queue_wait_p95_ms
      FROM jobs
     GROUP BY GROUPING SETS ((start), ())
), refusals AS MATERIALIZED (
    -- once, not once per bucket (served by log_rejected_idx)
    SELECT date_bin(%(step)s, log.{log.created_at}, %(origin)s) AS start, log.{log.failure_reason} AS reason,
           count(*) AS refused
      FROM {log} AS log
     WHERE log.{log.event} = 'ingest_rejected'
       AND log.{log.created_at} >= %(start)s AND log.{log.created_at} < %(end)s {log_filter}
     GROUP BY 1, 2
)
SELECT 'bucket' AS kind, buckets.start AS bucket_start, {figures},
       (SELECT jsonb_object_agg(reason, refused) FROM refusals WHERE refusals.start = buckets.start)
           AS rejected
  FROM buckets LEFT JOIN job_figures ON job_figures.start = buckets.start
UNION ALL
SELECT 'total', NULL, {figures}, NULL
  FROM job_figures WHERE job_figures.start IS NULL
 ORDER BY kind, bucket_start
"""

_PER_SLOT_SQL = """
SELECT job.{job.slot} AS slot_id, count(*) AS ingests,
       count(*) FILTER (WHERE job.{job.state} = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE job.{job.state} = 'timeout') AS timeouts,
       count(*) FILTER (WHERE job.{job.state} = 'failed' AND job.{job.failure_reason} = 'provider_error')
           AS provider_errors,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM job.{job.finalized_at} - job.{job.created_at}) * 1000)
           FILTER (WHERE job.{job.state} = 'succeeded') AS p95_ms
  FROM {job} AS job
 WHERE job.{job.created_at} >= %(start)s AND job.{job.created_at} < %(end)s AND NOT job.{job.is_test} {job_filter}
 GROUP BY job.{job.slot}
 ORDER BY job.{job.slot}
"""

FIGURES = (
    "ingests", "succeeded", "timeouts", "provider_errors", "internal_errors", "cancelled", "live",
    "p50_ms", "p95_ms", "provider_p50_ms", "queue_wait_p95_ms",
)  # fmt: skip


@dataclass(frozen=True)
class StatsReport:
    start: datetime
    end: datetime
    group_by: str
    totals: dict[str, Any]
    buckets: list[dict[str, Any]]
    slots: list[dict[str, Any]] | None = None


class ReportTooLarge(ValueError):
    """The period holds more buckets than a report may have (MAX_BUCKETS)."""


def stats_report(
    *, start: datetime, end: datetime, group_by: str, slot_id: str | None = None, provider: str | None = None
) -> StatsReport:
    """Ingest figures between ``start`` and ``end`` in ``group_by`` buckets, and their totals.

    ``slot_id`` narrows to one slot; ``provider`` to the jobs of that provider (and the refusals of the
    slots it is configured on now: a refusal happened before any job, so it has no provider). Without a
    slot, the report also breaks the totals down per slot.
    """
    step = GROUPINGS[group_by]
    if (end - start) / step > MAX_BUCKETS:
        raise ReportTooLarge(f"at most {MAX_BUCKETS} buckets: choose a shorter period or a larger grouping")
    from jobs.models import Job
    from slots.models import Slot

    params: dict[str, Any] = {"step": step, "start": start, "end": end, "origin": BUCKET_ORIGIN}
    job_filter = log_filter = ""
    if slot_id is not None:
        job_filter += " AND job.{job.slot} = %(slot_id)s"
        log_filter += " AND log.{log.slot_id} = %(slot_id)s"
        params["slot_id"] = slot_id
    if provider is not None:
        job_filter += " AND job.{job.provider} = %(provider)s"
        log_filter += (
            " AND log.{log.slot_id} IN (SELECT {slot.id} FROM {slot} WHERE {slot.provider} = %(provider)s)"
        )
        params["provider"] = provider
    names = {"job": Job, "log": ProcessingLogEntry, "slot": Slot}
    report_sql = sql(
        _REPORT_SQL.replace("{job_filter}", job_filter)
        .replace("{log_filter}", log_filter)
        .replace("{figures}", ", ".join(f"job_figures.{name}" for name in FIGURES)),
        **names,
    )
    with connection.cursor() as cursor:
        cursor.execute(report_sql, params)
        columns = [column.name for column in cursor.description or []]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    buckets = [_figures(row) for row in rows if row["kind"] == "bucket"]
    totals_row = next((row for row in rows if row["kind"] == "total"), None)
    totals = _figures(totals_row or {})
    totals.pop("start", None)
    rejected: dict[str, int] = {}
    for bucket in buckets:
        for reason, count in bucket["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + count
    totals["rejected"] = rejected
    slots = None
    if slot_id is None:
        per_slot_sql = sql(_PER_SLOT_SQL.replace("{job_filter}", job_filter), **names)
        with connection.cursor() as cursor:
            cursor.execute(per_slot_sql, params)
            columns = [column.name for column in cursor.description or []]
            slots = [_rounded(dict(zip(columns, row, strict=True))) for row in cursor.fetchall()]
    return StatsReport(start=start, end=end, group_by=group_by, totals=totals, buckets=buckets, slots=slots)


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {"start": row.get("bucket_start")}
    for name in FIGURES:
        value = row.get(name)
        figures[name] = (value or 0) if not name.endswith("_ms") else value
    figures["rejected"] = _json(row.get("rejected")) or {}
    return _rounded(figures)


def _rounded(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        name: (round(float(value)) if name.endswith("_ms") and value is not None else value)
        for name, value in figures.items()
    }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def dashboard_slots(
    *, start: datetime, end: datetime, per_slot: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every slot with its figures for the period, its last error in words and its last photo's time.

    Two subqueries per slot, each one index lookup (job_slot_recent_idx), whatever the table's size.
    """
    from django.db.models import OuterRef, Subquery

    from jobs.models import Job
    from jobs.states import JobState
    from slots.models import Slot

    booth_jobs = Job.objects.filter(slot=OuterRef("pk"), is_test=False).order_by("-created_at")
    failures = booth_jobs.filter(
        state__in=[JobState.FAILED, JobState.TIMEOUT], created_at__gte=start, created_at__lt=end
    )
    slots = Slot.objects.order_by("id").annotate(
        last_photo_at=Subquery(booth_jobs.values("created_at")[:1]),
        last_error_reason=Subquery(failures.values("failure_reason")[:1]),
        last_error_message=Subquery(failures.values("failure_message")[:1]),
        last_error_at=Subquery(failures.values("created_at")[:1]),
    )
    figures = {row["slot_id"]: row for row in per_slot}
    rows = []
    for slot in slots:
        row = figures.get(slot.id, {})
        ingests = row.get("ingests", 0)
        rows.append(
            {
                "slot": slot,
                "ingests": ingests,
                "success_percent": _share(row.get("succeeded", 0), ingests),
                "timeout_percent": _share(row.get("timeouts", 0), ingests),
                "p95_seconds": round(row["p95_ms"] / 1000, 1) if row.get("p95_ms") is not None else None,
                "last_photo_at": slot.last_photo_at,
                "last_error": _in_words(slot.last_error_reason, slot.last_error_message),
                "last_error_at": slot.last_error_at,
            }
        )
    return rows


def recent_failures(*, start: datetime, end: datetime, limit: int = 10) -> list[dict[str, Any]]:
    """The latest booth jobs that failed or timed out in the period, newest first, in words."""
    from jobs.models import Job
    from jobs.states import JobState

    jobs = (
        Job.objects.filter(
            is_test=False,
            state__in=[JobState.FAILED, JobState.TIMEOUT],
            created_at__gte=start,
            created_at__lt=end,
        )
        .order_by("-created_at")
        .values("id", "slot_id", "provider", "state", "failure_reason", "failure_message", "created_at")[
            :limit
        ]
    )
    return [{**job, "in_words": _in_words(job["failure_reason"], job["failure_message"])} for job in jobs]


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _in_words(reason: str | None, message: str | None) -> str:
    from photochanger.errors import FailureReason

    if not reason:
        return ""
    label = str(FailureReason(reason).label) if reason in FailureReason.values else reason
    return f"{label}: {message}" if message else label
