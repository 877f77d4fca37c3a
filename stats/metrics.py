"""``GET /metrics``: Prometheus text, computed from the database at scrape time.

Every web and worker process writes to the same PostgreSQL, so whichever web process Prometheus asks
answers for all of them (no per-process state, no multiprocess directory). Counts come from
``stats.models.IngestCounter`` (bumped by finalize and by refusals; a few hundred rows at most), live
jobs from the partial index on live jobs, workers from their heartbeats, media from sums over the
retained rows. When ``METRICS_TOKEN`` is set, the scrape must send ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from photochanger.sql import sql
from stats.models import DURATION_BUCKETS, IngestCounter

_COUNTERS_SQL = sql(
    """
SELECT {c.slot_id}, {c.provider}, {c.outcome}, {c.duration_bucket}, {c.wait_bucket}, {c.count},
       {c.duration_sum_ms}, {c.wait_sum_ms}, {c.provider_calls}
  FROM {c}
""",
    c=IngestCounter,
)


def _live_jobs() -> dict[str, int]:
    from jobs.models import Job
    from jobs.states import LIVE_STATES

    counts = {str(state): 0 for state in LIVE_STATES}
    # served by job_live_deadline_idx
    live = Job.objects.filter(state__in=list(LIVE_STATES)).values_list("state").annotate(n=Count("id"))
    for state, count in live:
        counts[state] = count
    return counts


def _media_bytes() -> dict[str, int]:
    from django.db.models import Sum

    from jobs.models import Job
    from media.models import MediaKind, MediaObject
    from slots.models import TemplateMedia

    # served by job_result_expiry_idx and media_live_expiry_idx
    results = (
        Job.objects.filter(result_deleted_at__isnull=True)
        .exclude(result_path="")
        .aggregate(total=Sum("result_size_bytes"))["total"]
    )
    inputs = MediaObject.objects.filter(
        deleted_at__isnull=True, kind=MediaKind.INPUT, owns_file=True
    ).aggregate(total=Sum("size_bytes"))["total"]
    templates = TemplateMedia.objects.aggregate(total=Sum("size_bytes"))["total"]
    return {"results": results or 0, "inputs": inputs or 0, "templates": templates or 0}


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Any]:
        with connection.cursor() as cursor:
            cursor.execute(_COUNTERS_SQL)
            rows = cursor.fetchall()
        ingests = CounterMetricFamily(
            "photochanger_ingests", "Booth photos by outcome: a job's final state, or the refusal's reason.",
            labels=["slot", "provider", "outcome"],
        )  # fmt: skip
        calls = CounterMetricFamily(
            "photochanger_provider_calls", "Calls made to AI providers, by the job's outcome.",
            labels=["provider", "result"],
        )  # fmt: skip
        by_outcome: dict[tuple[str, str, str], int] = {}
        by_call: dict[tuple[str, str], int] = {}
        duration = [0] * (len(DURATION_BUCKETS) + 2)
        wait = [0] * (len(DURATION_BUCKETS) + 2)
        duration_sum = wait_sum = 0.0
        for (
            slot,
            provider,
            outcome,
            duration_bucket,
            wait_bucket,
            count,
            d_sum,
            w_sum,
            provider_calls,
        ) in rows:
            key = (slot, provider, outcome)
            by_outcome[key] = by_outcome.get(key, 0) + count
            if provider:
                by_call[(provider, outcome)] = by_call.get((provider, outcome), 0) + provider_calls
            if outcome == "succeeded" and duration_bucket:
                duration[duration_bucket] += count
                duration_sum += d_sum / 1000
            if wait_bucket:
                wait[wait_bucket] += count
                wait_sum += w_sum / 1000
        for (slot, provider, outcome), count in sorted(by_outcome.items()):
            ingests.add_metric([slot, provider, outcome], count)
        for (provider, result), count in sorted(by_call.items()):
            calls.add_metric([provider, result], count)
        yield ingests
        yield calls
        yield _histogram(
            "photochanger_ingest_duration_seconds",
            "Time from receiving a photo to its result, succeeded booth jobs.",
            duration,
            duration_sum,
        )
        yield _histogram(
            "photochanger_queue_wait_seconds",
            "Time from receiving a photo to a worker claiming it.",
            wait,
            wait_sum,
        )
        jobs = GaugeMetricFamily("photochanger_jobs", "Live jobs now, by state.", labels=["state"])
        for state, count in sorted(_live_jobs().items()):
            jobs.add_metric([state], count)
        yield jobs
        from jobs.heartbeats import workers_all

        now = timezone.now()
        workers = GaugeMetricFamily(
            "photochanger_worker_last_seen_seconds",
            "Seconds since each worker's last heartbeat.",
            labels=["worker"],
        )
        for heartbeat in workers_all():
            workers.add_metric([heartbeat.name], (now - heartbeat.last_seen_at).total_seconds())
        yield workers
        media = GaugeMetricFamily("photochanger_media_bytes", "Bytes stored, by kind.", labels=["kind"])
        for kind, total in sorted(_media_bytes().items()):
            media.add_metric([kind], total)
        yield media


def _histogram(name: str, documentation: str, counts: list[int], total: float) -> HistogramMetricFamily:
    buckets = []
    cumulative = 0
    for index, bound in enumerate(DURATION_BUCKETS, start=1):
        cumulative += counts[index]
        buckets.append((repr(bound), cumulative))
    cumulative += counts[len(DURATION_BUCKETS) + 1]
    buckets.append(("+Inf", cumulative))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
