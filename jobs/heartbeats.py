"""Queue workers' heartbeats: each worker upserts its row every few seconds; readiness and metrics read them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from jobs.models import WorkerHeartbeat

# A worker that has not been seen for this long is gone (its row is removed after a day).
WORKER_SEEN_WITHIN = timedelta(seconds=30)
FORGET_AFTER = timedelta(days=1)


def worker_heartbeat_beat(*, name: str, started_at: datetime, jobs_in_flight: int) -> None:
    """Record that worker ``name`` is alive now (one upsert); forget workers silent for a day."""
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        name=name[:128],
        defaults={"started_at": started_at, "last_seen_at": now, "jobs_in_flight": jobs_in_flight},
    )
    WorkerHeartbeat.objects.filter(last_seen_at__lt=now - FORGET_AFTER).delete()


def worker_heartbeat_stop(*, name: str) -> None:
    """A worker stopping cleanly removes its row (readiness then no longer counts it)."""
    WorkerHeartbeat.objects.filter(name=name[:128]).delete()


def workers_seen(*, within: timedelta = WORKER_SEEN_WITHIN) -> list[WorkerHeartbeat]:
    return list(WorkerHeartbeat.objects.filter(last_seen_at__gte=timezone.now() - within))


def workers_all() -> list[WorkerHeartbeat]:
    return list(WorkerHeartbeat.objects.all())
