"""Statistics on a year of data: prints timings, asserts nothing.

Fills an embedded PostgreSQL under ``var/bench-stats`` (once; ``--refill`` to start over) with
1,000,000 jobs and 1,000,000 processing-log rows spread over the last 365 days across the 15 slots and
the providers (SQL ``generate_series``), then times, in this process:

- ``stats_report`` for the last 31 days grouped by day, all slots (what ``GET /api/stats/global``
  runs), and the same through the API view with the test client;
- the admin dashboard page (``/admin/stats/dashboard/?period=30d``) rendered for a superuser;
- a ``/metrics`` scrape, when the project serves one.

    .venv/bin/python bench/stats_year.py [--jobs 1000000] [--log-rows 1000000] [--repeat 7] [--refill]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / "var" / "bench-stats"

FILL_JOBS_SQL = """
INSERT INTO jobs_job (id, slot_id, state, provider, operation, provider_settings, templates,
                      provider_job_reference, created_at, expires_at, claimed_at, finalized_at, claimed_by,
                      claim_count, provider_calls, failure_reason, failure_message, result_path,
                      result_mime_type, result_sha256, request_metadata, is_test)
SELECT gen_random_uuid(), 'slot-' || lpad((1 + n %% 15)::text, 3, '0'),
       CASE WHEN n %% 20 = 0 THEN 'timeout' WHEN n %% 33 = 0 THEN 'failed' ELSE 'succeeded' END,
       (ARRAY['gemini', 'openai', 'turbotext', 'local'])[1 + n %% 4], 'image_edit', '{}'::jsonb, '[]'::jsonb, '',
       at, at + interval '48 seconds', at + interval '200 milliseconds',
       at + make_interval(secs => 2 + (n %% 13)), 'bench', 1, 1,
       CASE WHEN n %% 20 <> 0 AND n %% 33 = 0 THEN 'provider_error' WHEN n %% 20 = 0 THEN 'provider_timeout'
            ELSE '' END,
       CASE WHEN n %% 20 <> 0 AND n %% 33 = 0 THEN 'Gemini answered 400: bench' ELSE '' END,
       '', '', '', '{}'::jsonb, n %% 500 = 0
  FROM (SELECT n, now() - make_interval(secs => (n::float8 / %(jobs)s) * 365 * 86400) AS at
          FROM generate_series(1, %(jobs)s) AS n) AS source
"""

FILL_LOG_SQL = """
INSERT INTO stats_processinglogentry (created_at, event, slot_id, http_status, job_state, failure_reason,
                                      duration_ms, client_ip, password_guess, details)
SELECT now() - make_interval(secs => (n::float8 / %(rows)s) * 365 * 86400),
       CASE WHEN n %% 10 = 0 THEN 'ingest_rejected' ELSE 'job_finished' END,
       'slot-' || lpad((1 + n %% 15)::text, 3, '0'),
       CASE WHEN n %% 10 = 0 THEN 401 ELSE NULL END, '',
       CASE WHEN n %% 10 = 0 THEN (ARRAY['invalid_password', 'payload_too_large'])[1 + n %% 2] ELSE '' END,
       5000, ('10.0.0.' || (n %% 200)::text)::inet, false, '{}'::jsonb
  FROM generate_series(1, %(rows)s) AS n
"""


# What finalize would have counted for /metrics over that year, and the last 72 h of results kept.
FILL_COUNTERS_SQL = """
INSERT INTO stats_ingestcounter (slot_id, provider, outcome, duration_bucket, wait_bucket, count,
                                 duration_sum_ms, wait_sum_ms, provider_calls)
SELECT slot_id, provider, state,
       CASE WHEN state = 'succeeded'
            THEN width_bucket(extract(epoch FROM finalized_at - created_at), %(buckets)s::float8[]) + 1
            ELSE 0 END AS duration_bucket,
       width_bucket(extract(epoch FROM claimed_at - created_at), %(buckets)s::float8[]) + 1 AS wait_bucket,
       count(*), sum(extract(epoch FROM finalized_at - created_at) * 1000)::bigint,
       sum(extract(epoch FROM claimed_at - created_at) * 1000)::bigint, sum(provider_calls)
  FROM jobs_job WHERE NOT is_test
 GROUP BY 1, 2, 3, 4, 5
"""
KEEP_RESULTS_SQL = """
UPDATE jobs_job SET result_path = 'results/' || id || '.jpg', result_size_bytes = 900000,
                    result_expires_at = finalized_at + interval '72 hours'
 WHERE state = 'succeeded' AND created_at > now() - interval '72 hours'
"""


def setup(jobs: int, log_rows: int, refill: bool) -> None:
    os.environ.update({"DATA_DIR": str(DATA_DIR), "DEBUG": "false", "LOG_LEVEL": "WARNING"})
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(BASE_DIR))
    from photochanger.embedded_db import ensure_database_url

    ensure_database_url()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    from jobs.models import Job
    from stats.models import DURATION_BUCKETS

    if refill:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE jobs_job, stats_processinglogentry, media_mediaobject, stats_ingestcounter CASCADE"
            )
    if Job.objects.count() < jobs:
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(FILL_JOBS_SQL, {"jobs": jobs})
            cursor.execute(FILL_LOG_SQL, {"rows": log_rows})
            cursor.execute("TRUNCATE stats_ingestcounter")
            cursor.execute(FILL_COUNTERS_SQL, {"buckets": list(DURATION_BUCKETS)})
            cursor.execute(KEEP_RESULTS_SQL)
            cursor.execute("ANALYZE jobs_job")
            cursor.execute("ANALYZE stats_processinglogentry")
        print(f"filled {jobs:,} jobs and {log_rows:,} log rows in {time.monotonic() - started:.0f} s")


def timed(label: str, call: Callable[[], object], repeat: int) -> None:
    call()  # warm: plans and caches, as on a running server
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    print(
        f"{label}: median {statistics.median(durations):.0f} ms, max {max(durations):.0f} ms ({repeat} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--refill", action="store_true")
    options = parser.parse_args()
    setup(options.jobs, options.log_rows, options.refill)

    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from slots.services import slots_ensure_static
    from stats.selectors import stats_report

    slots_ensure_static()
    end = timezone.now()
    start = end - timedelta(days=31)
    timed(
        "stats_report, 31 days by day, all slots",
        lambda: stats_report(start=start, end=end, group_by="day"),
        options.repeat,
    )
    user_model = get_user_model()
    admin = user_model.objects.filter(username="bench-admin").first() or user_model.objects.create_superuser(
        "bench-admin", "", "bench-admin-password"
    )
    client = Client()
    client.force_login(admin)
    query = {"from": start.isoformat(), "to": end.isoformat(), "group_by": "day"}

    def api() -> None:
        assert client.get(reverse("stats-global"), query).status_code == 200

    def dashboard() -> None:
        assert client.get(reverse("stats-dashboard"), {"period": "30d"}).status_code == 200

    timed("GET /api/stats/global, 31 days by day", api, options.repeat)
    timed("GET /admin/stats/dashboard/?period=30d", dashboard, options.repeat)
    try:
        metrics_url = reverse("metrics")
    except NoReverseMatch:
        print("/metrics: not served by this code")
        return

    def metrics() -> None:
        assert client.get(metrics_url).status_code == 200

    timed("GET /metrics", metrics, options.repeat)


if __name__ == "__main__":
    main()
