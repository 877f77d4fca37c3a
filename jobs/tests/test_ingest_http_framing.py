"""How the ingest URL takes requests whose HTTP framing lies or surprises, through a real uvicorn and
raw sockets: a Content-Length shorter or longer than the body, and Expect values other than
``100-continue``. (Chunked bodies without a length: ``test_ingest_slow_uploads.py``.)

What the service does, and why:
- **Content-Length shorter than the body**: the request ends where its length says (HTTP/1.1 framing),
  so the multipart body is cut (no final boundary: no photo, no job); the bytes after it are not an HTTP
  request, and uvicorn itself answers them with 400 and closes the connection;
- **Content-Length longer than the body**: the rest never comes, so the body timeout ends it (408); a
  client that closes its side instead is gone, and nothing is answered;
- **Expect**: ``100-continue`` in any case gets ``100 Continue`` once a place to receive the body is
  free; any other expectation is ignored and the request is served as if it had none (RFC 9110
  §10.1.1 lets a server answer 417 *or* ignore it; no booth sends another, and a proxy in front
  would not pass a 417 on consistently).
"""

from __future__ import annotations

import socket

import pytest

from conftest import INGEST_PASSWORD, free_port
from jobs.models import Job
from jobs.tests.booth import BOUNDARY, booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot
from stats.models import ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_slot(studio):
    Slot.objects.filter(id="slot-001").update(
        provider="local", operation="grayscale", settings={}, is_active=True
    )


def booth_body() -> bytes:
    photo = make_jpeg()
    return multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)


def stored_inputs(service) -> list[str]:
    folder = service.media_root / "inputs"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_content_length_shorter_than_the_body_cuts_the_request_and_creates_no_job(
    service, worker, local_slot
):
    body = booth_body()
    response = booth_post(service.port, "/ingest/slot-001", body, content_length=len(body) // 2)

    assert response.status == 400
    assert Job.objects.count() == 0
    assert stored_inputs(service) == []


def test_a_content_length_longer_than_the_body_gets_408_after_the_body_timeout(service, local_slot):
    port = free_port()
    web = service.start_web_process(port, {"INGEST_BODY_TIMEOUT_SECONDS": "1.5"})
    try:
        body = booth_body()
        response = booth_post(port, "/ingest/slot-001", body, content_length=len(body) + 1000, timeout=30)
    finally:
        web.stop()

    assert response.status == 408
    assert response.json()["failure_reason"] == "request_timeout"
    assert response.headers["connection"] == "close"
    assert Job.objects.count() == 0
    assert stored_inputs(service) == []
    assert ProcessingLogEntry.objects.get().failure_reason == "request_timeout"


def test_a_client_that_stops_short_of_its_content_length_and_closes_gets_no_answer_and_leaves_nothing(
    service, local_slot
):
    body = booth_body()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(
            f"POST /ingest/slot-001 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body) + 1000}\r\n"
            f"\r\n".encode()
            + body
        )
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65536) == b"", "closed without an answer: there is nobody left to answer"
    assert Job.objects.count() == 0
    assert stored_inputs(service) == []


@pytest.mark.parametrize("expect", ["100-Continue", "100-CONTINUE"])
def test_expect_100_continue_is_understood_in_any_case(service, worker, local_slot, expect):
    response = booth_post(service.port, "/ingest/slot-001", booth_body(), expect=expect)

    assert response.got_continue
    assert response.status == 200, response.body[:300]


@pytest.mark.parametrize("expect", ["something-else", "100-continue, 200-ok", "", "x" * 4000])
def test_other_expectations_are_ignored_and_the_request_is_served(service, worker, local_slot, expect):
    response = booth_post(service.port, "/ingest/slot-001", booth_body(), expect=expect)

    assert not response.got_continue
    assert response.status == 200, response.body[:300]
    assert response.headers["content-type"] == "image/jpeg"
    assert Job.objects.get().state == "succeeded"
