"""Logs: with DEBUG off, one JSON object per line (uvicorn's lines too), each line once, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from django.conf import settings

from conftest import INGEST_PASSWORD, free_port
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot

pytestmark = pytest.mark.django_db(transaction=True)


PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "logging-test-secret-key-0123456789-abcdefghijkl"}


def test_production_logs_are_json_lines_written_once_without_secrets(service, studio):
    Slot.objects.filter(id="slot-001").update(
        provider="local", operation="sepia", settings={}, is_active=True
    )
    worker = service.start_worker(env=PRODUCTION)
    port = free_port()
    web = service.start_web_process(port, PRODUCTION)
    try:
        photo = make_jpeg()
        wrong = multipart_body(booth_fields(photo, "wrong-password-123"), photo=photo)
        assert booth_post(port, "/ingest/slot-001", wrong).status == 401
        right = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
        assert booth_post(port, "/ingest/slot-001", right).status == 200
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        web.stop()
        service.stop_workers()
    output = web.output()
    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "event"} <= set(record) for record in records)
    events = [record["event"] for record in records]
    hashed = [event for event in events if event.startswith("ingest password: hashed")]
    assert len(hashed) == 2, "the wrong and the right password, each logged once"
    assert any(record["logger"].startswith("uvicorn") for record in records), "uvicorn's lines are JSON too"
    assert len(events) == len(set(zip(events, (r["time"] for r in records), strict=True))), "no line twice"
    worker_lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    succeeded = [record for record in worker_lines if record["event"].endswith(" succeeded")]
    assert succeeded, worker.output()
    job_line = succeeded[0]
    assert job_line["slot_id"] == "slot-001" and job_line["provider"] == "local"
    assert job_line["job_id"] in job_line["event"] and job_line["duration_ms"] >= 0
    for secret in (INGEST_PASSWORD, "wrong-password-123", "test-gemini-key", "sk-test-openai-key"):
        assert secret not in output
        assert secret not in worker.output()


def test_python_warnings_in_production_are_json_lines_too(service):
    """A library's warning (servestatic's "No directory at …" before collectstatic, say) is a log line
    like any other: one JSON object from the py.warnings logger, not a raw ``file:line:`` line."""
    code = "import django, warnings; django.setup(); warnings.warn('static folder missing', UserWarning)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **service.env, **PRODUCTION, "DJANGO_SETTINGS_MODULE": "photochanger.settings"},
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines, "the warning was logged"
    records = [json.loads(line) for line in lines]
    assert [record["logger"] for record in records] == ["py.warnings"]
    assert records[0]["level"] == "WARNING" and "static folder missing" in records[0]["event"]
