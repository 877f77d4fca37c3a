"""Slow and odd bodies against a real uvicorn: a slow upload holds nothing other booths need, is cut off
with 408 after the body timeout, and a body with no Content-Length is still held to the size limit."""

from __future__ import annotations

import json
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
        provider="local", operation="grayscale", settings={}, size_limit_mb=1, is_active=True
    )


def booth_body() -> bytes:
    photo = make_jpeg()
    return multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)


def start_slow_upload(port: int, body: bytes, sent: int) -> socket.socket:
    """Headers and the first ``sent`` bytes of ``body`` after 100 Continue; the rest never comes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"POST /ingest/slot-001 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
        f"Expect: 100-continue\r\n\r\n".encode()
    )
    assert sock.recv(100).startswith(b"HTTP/1.1 100")
    sock.sendall(body[:sent])
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed without an answer"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(rest) < int(headers.get("content-length", "0")):
        rest += sock.recv(65536)
    return int(lines[0].split()[1]), headers, rest


def test_a_body_slower_than_the_body_timeout_gets_408_and_leaves_nothing_behind(service, local_slot):
    port = free_port()
    web = service.start_web_process(port, {"INGEST_BODY_TIMEOUT_SECONDS": "1.5"})
    try:
        with start_slow_upload(port, booth_body(), sent=1000) as sock:
            status, headers, body = read_answer(sock)
    finally:
        web.stop()
    assert status == 408
    assert json.loads(body)["failure_reason"] == "request_timeout"
    assert headers["connection"] == "close"
    assert Job.objects.count() == 0
    assert list((service.media_root / "inputs").glob("*")) == []
    assert ProcessingLogEntry.objects.get().failure_reason == "request_timeout"


def test_slow_uploads_do_not_hold_places_other_booths_need(service, worker, local_slot):
    port = free_port()
    web = service.start_web_process(
        port, {"INGEST_MAX_CONCURRENT_INTAKE": "2", "INGEST_BODY_TIMEOUT_SECONDS": "30"}
    )
    body = booth_body()
    slow = [start_slow_upload(port, body, sent=len(body) // 2) for _ in range(20)]
    try:
        answer = booth_post(port, "/ingest/slot-001", body, timeout=20)
        assert answer.status == 200, answer.body[:300]
        for sock in slow:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)  # still receiving: nothing answered, nothing closed
    finally:
        for sock in slow:
            sock.close()
        web.stop()
    assert Job.objects.count() == 1


def chunked_post(port: int, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """POST with Transfer-Encoding: chunked and no Content-Length (64 KB chunks)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST /ingest/slot-001 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        try:
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body: the answer is already waiting
        return read_answer(sock)


def test_a_chunked_body_without_length_is_held_to_the_size_limit(service, worker, local_slot):
    big = make_jpeg(1800, 1400, quality=95, noise=True)
    assert len(big) > 1.3 * 1024 * 1024, "over the slot's 1 MB plus the multipart allowance"
    status, _headers, body = chunked_post(
        service.port, multipart_body(booth_fields(big, INGEST_PASSWORD), photo=big)
    )
    assert status == 413
    assert json.loads(body)["failure_reason"] == "payload_too_large"

    status, headers, _body = chunked_post(service.port, booth_body())
    assert status == 200, "a chunked body within the limit is served like any other"
    assert headers["content-type"] == "image/jpeg"
    assert Job.objects.count() == 1
