"""Writes to the processing log: every refused ingest request (hot path), and pruning old rows."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from photochanger.sql import sql
from stats.models import IngestCounter, LogEvent, ProcessingLogEntry

# One plain statement: during a flood of refused requests (guessers, a misconfigured booth) this runs
# hundreds of times a second, and the ORM's create() cost more than the rest of a refusal. It also
# counts the refusal for /metrics (stats.models.IngestCounter).
_REJECTION_SQL = sql(
    """
WITH entry AS (
    INSERT INTO {log} ({log.created_at}, {log.event}, {log.slot_id}, {log.http_status}, {log.failure_reason},
                       {log.duration_ms}, {log.client_ip}, {log.password_guess}, {log.job_state}, {log.details})
    VALUES (%(created_at)s, %(event)s, %(slot_id)s, %(http_status)s, %(failure_reason)s, %(duration_ms)s,
            %(client_ip)s, %(password_guess)s, '', '{{}}'::jsonb)
)
INSERT INTO {counter} ({counter.slot_id}, {counter.provider}, {counter.outcome}, {counter.duration_bucket},
                       {counter.wait_bucket}, {counter.count}, {counter.duration_sum_ms}, {counter.wait_sum_ms},
                       {counter.provider_calls})
VALUES (%(slot_id)s, '', %(failure_reason)s, 0, 0, 1, 0, 0, 0)
ON CONFLICT ({counter.slot_id}, {counter.provider}, {counter.outcome}, {counter.duration_bucket},
             {counter.wait_bucket})
DO UPDATE SET {counter.count} = {counter}.{counter.count} + 1
""",
    log=ProcessingLogEntry,
    counter=IngestCounter,
)


def log_entry_rejection_create(
    *,
    created_at: datetime,
    slot_id: str,
    http_status: int,
    failure_reason: str,
    duration_ms: int,
    client_ip: str | None,
    password_guess: bool,
) -> None:
    """Record one refused ingest attempt (no job was created): never the password or image bytes."""
    with connection.cursor() as cursor:
        cursor.execute(
            _REJECTION_SQL,
            {
                "created_at": created_at,
                "event": LogEvent.INGEST_REJECTED.value,
                # As the booth typed it in the URL, minus what PostgreSQL text cannot hold.
                "slot_id": slot_id.replace("\x00", "\ufffd")[:64],
                "http_status": http_status,
                "failure_reason": failure_reason,
                "duration_ms": duration_ms,
                "client_ip": client_ip,
                "password_guess": password_guess,
            },
        )


def log_entries_prune(*, before: datetime, batch: int = 10_000, dry_run: bool = False) -> int:
    """Delete processing-log rows written before ``before``, ``batch`` at a time; returns how many."""
    old = ProcessingLogEntry.objects.filter(created_at__lt=before)
    if dry_run:
        return old.count()
    removed = 0
    while True:
        ids = list(old.order_by("created_at").values_list("id", flat=True)[:batch])
        if not ids:
            return removed
        ProcessingLogEntry.objects.filter(id__in=ids).delete()
        removed += len(ids)
