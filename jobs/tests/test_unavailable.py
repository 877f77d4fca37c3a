"""503 service_unavailable: the database is down, or a web process holds too many requests."""

from __future__ import annotations

import pytest

from conftest import INGEST_PASSWORD, free_port
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot
from stats.models import ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def active_slot(studio):
    Slot.objects.filter(id="slot-001").update(
        provider="local", operation="sepia", settings={}, is_active=True
    )


def post(port: int):
    photo = make_jpeg()
    return booth_post(
        port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )


def test_database_down_gets_503_json_not_500(service, active_slot):
    port = free_port()
    web = service.start_web_process(port, {"DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing"})
    try:
        response = post(port)
    finally:
        web.stop()
    assert response.status == 503, response.body[:300]
    body = response.json()
    assert (body["status"], body["failure_reason"]) == ("error", "service_unavailable")
    assert list((service.media_root / "inputs").glob("*")) == [], "no orphan input file"
    assert "Traceback" not in web.output()


def test_too_many_held_requests_get_503_with_retry_after(service, active_slot):
    port = free_port()
    web = service.start_web_process(port, {"INGEST_MAX_HELD_REQUESTS": "0"})
    try:
        response = post(port)
    finally:
        web.stop()
    assert response.status == 503
    assert response.json()["failure_reason"] == "service_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert Job.objects.count() == 0
    assert ProcessingLogEntry.objects.get().failure_reason == "service_unavailable", "the attempt is logged"
