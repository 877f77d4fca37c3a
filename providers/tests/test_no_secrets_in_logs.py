"""Secrets and image bytes never reach the logs, whatever happens to a job."""

from __future__ import annotations

import base64

import pytest

from conftest import INGEST_PASSWORD
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from providers.tests.pipeline import configure_slot, post_photo

pytestmark = pytest.mark.django_db(transaction=True)


def test_logs_hold_no_keys_passwords_or_image_bytes(
    service, worker, studio, fake_gemini, fake_openai, fake_turbotext
):
    configure_slot("slot-004", "gemini", "image_edit", {"prompt": "p"})
    configure_slot("slot-005", "openai", "image_edit", {"prompt": "p"})
    configure_slot("slot-006", "turbotext", "image2image", {"prompt": "p", "poll_interval_seconds": 0.3})
    fake_gemini.set_script(["503", "400"])  # a retry, then a permanent failure: both get logged
    fake_openai.default_mode = "quota"
    photo = make_jpeg(noise=True)
    statuses = [
        post_photo(service, slot_id, photo)[1].status for slot_id in ("slot-004", "slot-005", "slot-006")
    ]
    assert statuses == [502, 502, 200]
    wrong = booth_post(
        service.port,
        "/ingest/slot-004",
        multipart_body(booth_fields(photo, "wrong-secret-pass"), photo=photo),
    )
    assert wrong.status == 401

    logs = (service.web.output() if service.web else "") + worker.output()
    assert "provider failed permanently" in logs, "the failures were logged"
    for secret in (
        "test-gemini-key",
        "sk-test-openai-key",
        "test-turbotext-key",
        INGEST_PASSWORD,
        "wrong-secret-pass",
    ):
        assert secret not in logs
    assert base64.b64encode(photo[1000:1060]).decode()[:40] not in logs
