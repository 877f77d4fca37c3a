"""GET /metrics: Prometheus text from the database, the same from every web process; a token when set."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from conftest import INGEST_PASSWORD, free_port
from jobs.heartbeats import worker_heartbeat_beat
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot

pytestmark = pytest.mark.django_db(transaction=True)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_report_refusals_live_jobs_workers_and_media(client, studio):
    now = timezone.now()
    Job.objects.create(
        id=uuid.uuid4(), slot_id="slot-002", provider="gemini", state="pending", created_at=now,
        expires_at=now + timedelta(seconds=48),
    )  # fmt: skip
    worker_heartbeat_beat(name="box:7:w", started_at=now, jobs_in_flight=0)
    from jobs.ingest import ingest_log_rejection
    from photochanger.errors import FailureReason

    for _ in range(2):
        ingest_log_rejection(
            slot_id="slot-001", reason=FailureReason.INVALID_PASSWORD, client_ip="10.0.0.9", duration_ms=3
        )
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    values = samples(response.content.decode())
    refused = (
        "photochanger_ingests_total",
        (("outcome", "invalid_password"), ("provider", ""), ("slot", "slot-001")),
    )
    assert values[refused] == 2
    assert values[("photochanger_jobs", (("state", "pending"),))] == 1
    assert values[("photochanger_jobs", (("state", "processing"),))] == 0
    assert values[("photochanger_worker_last_seen_seconds", (("worker", "box:7:w"),))] < 5
    assert ("photochanger_media_bytes", (("kind", "results"),)) in values
    assert ("photochanger_ingest_duration_seconds_bucket", (("le", "+Inf"),)) in values


def test_every_web_process_gives_the_same_counts(service, worker, studio):
    Slot.objects.filter(id="slot-001").update(
        provider="local", operation="grayscale", settings={}, is_active=True
    )
    second_port = free_port()
    second = service.start_web_process(second_port, {})
    try:
        photo = make_jpeg()
        for port in (service.port, second_port, service.port):
            body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
            assert booth_post(port, "/ingest/slot-001", body).status == 200
        wrong = multipart_body(booth_fields(photo, "not-it"), photo=photo)
        assert booth_post(second_port, "/ingest/slot-001", wrong).status == 401
        scrapes = [
            samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
            for port in (service.port, second_port)
        ]
    finally:
        second.stop()
    for values in scrapes:
        key = (
            "photochanger_ingests_total",
            (("outcome", "succeeded"), ("provider", "local"), ("slot", "slot-001")),
        )
        assert values[key] == 3
        refused = (
            "photochanger_ingests_total",
            (("outcome", "invalid_password"), ("provider", ""), ("slot", "slot-001")),
        )
        assert values[refused] == 1
        assert values[("photochanger_ingest_duration_seconds_count", ())] == 3
        assert (
            values[("photochanger_provider_calls_total", (("provider", "local"), ("result", "succeeded")))]
            == 3
        )
    moving = "photochanger_worker_last_seen_seconds"  # seconds since a heartbeat: differs by the moment
    steady = [{key: value for key, value in values.items() if key[0] != moving} for values in scrapes]
    assert steady[0] == steady[1]


def test_a_metrics_token_is_required_when_set(service):
    port = free_port()
    web = service.start_web_process(port, {"METRICS_TOKEN": "scrape-secret"})
    try:
        anonymous = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        wrong = httpx.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10
        )
        right = httpx.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer scrape-secret"}, timeout=10
        )
    finally:
        web.stop()
    assert (anonymous.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert "photochanger_jobs" in right.text
