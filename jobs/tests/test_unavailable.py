"""503 service_unavailable: the database is down, or a web process holds too many requests."""

from __future__ import annotations

import threading
import time

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


def test_fifteen_booths_posting_at_once_while_the_database_is_down_all_get_503_within_two_seconds(
    service, active_slot
):
    # 15 requests on 4 database threads: without the outage gate each call waits the pool's 1 s timeout
    # for a connection and the last booths wait for the first ones (4 s). With it, one call at a time
    # waits for the server; the others are answered at once.
    port = free_port()
    web = service.start_web_process(port, {"DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing"})
    answers: list[tuple[int, float]] = []

    def booth() -> None:
        started = time.monotonic()
        response = post(port)
        answers.append((response.status, time.monotonic() - started))

    try:
        for _ in range(2):  # the first wave meets a process that has not seen the outage yet
            booths = [threading.Thread(target=booth) for _ in range(15)]
            for thread in booths:
                thread.start()
            for thread in booths:
                thread.join(timeout=30)
    finally:
        web.stop()
    assert len(answers) == 30
    assert {status for status, _ in answers} == {503}
    # Measured at the booth over loopback: the server's answer time plus milliseconds.
    slowest = max(elapsed for _, elapsed in answers)
    assert slowest <= 2.0, f"the slowest 503 took {slowest:.2f} s"
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
