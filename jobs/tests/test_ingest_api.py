"""POST /ingest/<slot_id> end to end: real uvicorn, real run_worker, real PostgreSQL, real HTTP."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

from conftest import INGEST_PASSWORD, TEST_SYNC_SECONDS
from jobs.models import Job
from jobs.tests.booth import BOUNDARY, booth_fields, booth_post, make_jpeg, make_png, multipart_body
from media.models import MediaObject
from slots.models import Slot
from stats.models import LogEvent, ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)


def configure(slot_id: str, **fields: object) -> None:
    Slot.objects.filter(id=slot_id).update(**fields)


def files_under(root: Path, folder: str) -> list[Path]:
    return [path for path in (root / folder).glob("*") if path.is_file()] if (root / folder).exists() else []


@pytest.fixture
def local_slot(studio):
    configure(
        "slot-001", provider="local", operation="grayscale", settings={"output_format": "png"}, is_active=True
    )
    return "slot-001"


def test_booth_request_round_trips_with_the_processed_image(service, worker, local_slot):
    photo = make_jpeg()
    fields = [*booth_fields(photo, INGEST_PASSWORD), ("survey_email", "guest@example.com")]
    response = booth_post(service.port, "/ingest/slot-001", multipart_body(fields, photo=photo))

    assert response.got_continue, "the server must answer Expect: 100-continue"
    assert response.status == 200, response.body[:300]
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-length"] == str(len(response.body)), "no chunked encoding for the booth"
    with Image.open(io.BytesIO(response.body)) as image:
        assert image.size == (640, 427)
        red, green, blue = image.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
        assert red == green == blue  # grayscale

    job = Job.objects.get(id=uuid.UUID(response.headers["x-job-id"]))
    assert job.state == "succeeded"
    assert job.result_mime_type == "image/png"
    assert job.result_size_bytes == len(response.body)
    assert job.result_expires_at is not None
    assert job.request_metadata["hash"] == dict(fields)["hash"]
    assert job.request_metadata["version"] == "3.30.2"
    assert job.request_metadata["survey_email"] == "guest@example.com"
    assert job.request_metadata["profile"].startswith("C:\\Users")
    assert "password" not in job.request_metadata
    assert INGEST_PASSWORD not in str(job.request_metadata)
    # The input lives only while the job is live.
    assert files_under(service.media_root, "inputs") == []
    assert MediaObject.objects.get(job=job).deleted_at is not None
    events = list(ProcessingLogEntry.objects.filter(job=job).values_list("event", flat=True))
    assert sorted(events) == [LogEvent.INGEST_ACCEPTED, LogEvent.JOB_FINISHED]


def test_legacy_api_ingest_path_and_file_field_are_accepted(service, worker, local_slot):
    photo = make_png()
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), "file", photo, "shot.png", "image/png")
    response = booth_post(service.port, "/api/ingest/slot-001", body)
    assert response.status == 200, response.body[:300]
    assert Job.objects.get(id=response.headers["x-job-id"]).state == "succeeded"


def test_image_type_is_decided_by_bytes_not_by_the_declared_type(service, worker, local_slot):
    photo = make_png()
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo, content_type="image/jpeg")
    response = booth_post(service.port, "/ingest/slot-001", body)
    assert response.status == 200
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert job.request_metadata["_upload"]["content_type"] == "image/jpeg"
    assert MediaObject.objects.get(job=job).mime_type == "image/png"


def _assert_rejected(service, response, status, reason):
    assert response.status == status, response.body[:300]
    body = response.json()
    assert body["status"] == "error"
    assert body["failure_reason"] == reason
    assert body["message"]
    assert Job.objects.count() == 0
    assert files_under(service.media_root, "inputs") == []
    entry = ProcessingLogEntry.objects.get(event=LogEvent.INGEST_REJECTED)
    assert entry.failure_reason == reason
    assert entry.http_status == status


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [("/ingest/slot-099", 404, "slot_not_found"), ("/ingest/slot-002", 404, "slot_disabled")],
)
def test_unknown_or_disabled_slot_gets_404_and_creates_no_job(service, local_slot, path, status, reason):
    photo = make_jpeg()
    response = booth_post(
        service.port, path, multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    _assert_rejected(service, response, status, reason)


@pytest.mark.parametrize(
    "path",
    [
        "/ingest/slot-001%00",
        "/ingest/" + "s" * 300,
        "/ingest/%D1%81%D0%BB%D0%BE%D1%82-001",
        "/ingest/slot-001%20",
    ],
    ids=["NUL character", "300 characters", "Cyrillic", "trailing space"],
)
def test_a_slot_id_no_slot_can_have_gets_404_json_and_is_logged(service, local_slot, path):
    photo = make_jpeg()
    response = booth_post(
        service.port, path, multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    _assert_rejected(service, response, 404, "slot_not_found")


def test_a_slot_id_with_a_nul_character_and_a_big_photo_gets_404_not_500(service, local_slot):
    # Over 1 MB the slot's own limit is looked up before 100 Continue: that lookup must not fail either.
    photo = make_jpeg(1800, 1400, quality=95, noise=True)
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    assert len(body) > 1.3 * 1024 * 1024
    _assert_rejected(service, booth_post(service.port, "/ingest/slot-001%00", body), 404, "slot_not_found")


def test_nul_characters_in_booth_fields_are_kept_as_replacement_characters(service, worker, local_slot):
    photo = make_jpeg()
    fields = [*booth_fields(photo, INGEST_PASSWORD), ("survey\x00name", "a\x00b")]
    body = multipart_body(fields, photo=photo, filename="IMG\x00_0003.JPG", content_type="image/jp\x00eg")
    response = booth_post(service.port, "/ingest/slot-001", body)

    assert response.status == 200, response.body[:300]
    metadata = Job.objects.get(id=response.headers["x-job-id"]).request_metadata
    assert metadata["survey\ufffdname"] == "a\ufffdb"
    assert "\x00" not in str(metadata)


def test_missing_photo_gets_400_and_creates_no_job(service, local_slot):
    body = multipart_body(booth_fields(b"", INGEST_PASSWORD), file_field=None)
    _assert_rejected(service, booth_post(service.port, "/ingest/slot-001", body), 400, "invalid_request")


def test_missing_password_gets_400_and_creates_no_job(service, local_slot):
    photo = make_jpeg()
    fields = [item for item in booth_fields(photo, INGEST_PASSWORD) if item[0] != "password"]
    _assert_rejected(
        service,
        booth_post(service.port, "/ingest/slot-001", multipart_body(fields, photo=photo)),
        400,
        "invalid_request",
    )


def test_malformed_multipart_gets_400_and_creates_no_job(service, local_slot):
    body = b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: garbage\r\n\r\nno end"
    _assert_rejected(service, booth_post(service.port, "/ingest/slot-001", body), 400, "invalid_request")


@pytest.mark.parametrize("charset", ["idna", "utf-16", "hex"])
def test_a_charset_that_cannot_decode_the_form_gets_400_not_500(service, local_slot, charset):
    photo = make_jpeg()
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    content_type = f"multipart/form-data; boundary={BOUNDARY}; charset={charset}"
    response = booth_post(service.port, "/ingest/slot-001", body, content_type=content_type)
    _assert_rejected(service, response, 400, "invalid_request")


def test_wrong_password_gets_401_and_creates_no_job(service, local_slot):
    photo = make_jpeg()
    body = multipart_body(booth_fields(photo, "not-the-password"), photo=photo)
    response = booth_post(service.port, "/ingest/slot-001", body)
    _assert_rejected(service, response, 401, "invalid_password")
    assert b"not-the-password" not in response.body
    assert "not-the-password" not in str(ProcessingLogEntry.objects.values().get())


def test_no_ingest_password_configured_means_ingest_is_closed(service, local_slot):
    from slots.models import StudioSettings

    StudioSettings.objects.update(ingest_password_hash="")
    photo = make_jpeg()
    body = multipart_body(booth_fields(photo, ""), photo=photo)
    assert booth_post(service.port, "/ingest/slot-001", body).status == 400
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    assert booth_post(service.port, "/ingest/slot-001", body).status == 401
    assert Job.objects.count() == 0


def test_photo_over_the_slot_limit_gets_413_and_creates_no_job(service, local_slot):
    configure("slot-001", size_limit_mb=1)
    photo = make_jpeg(1600, 1200, quality=95, noise=True)
    assert len(photo) > 1024 * 1024
    response = booth_post(
        service.port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    _assert_rejected(service, response, 413, "payload_too_large")


def test_oversized_content_length_is_refused_before_the_body_is_sent(service, local_slot):
    configure("slot-001", size_limit_mb=2)
    response = booth_post(service.port, "/ingest/slot-001", b"", content_length=50 * 1024 * 1024, timeout=10)
    assert not response.got_continue, "the booth must not be invited to upload 50 MB"
    _assert_rejected(service, response, 413, "payload_too_large")


def test_bytes_that_are_not_an_image_get_415_and_create_no_job(service, local_slot):
    fake_photo = b"GIF89a" + b"\x00" * 2000
    body = multipart_body(booth_fields(fake_photo, INGEST_PASSWORD), photo=fake_photo)
    _assert_rejected(
        service, booth_post(service.port, "/ingest/slot-001", body), 415, "unsupported_media_type"
    )


def test_get_on_the_ingest_url_is_refused_with_json(service, studio):
    response = httpx.get(f"{service.base_url}/ingest/slot-001")
    assert response.status_code == 405
    assert response.json()["failure_reason"] == "method_not_allowed"


def test_no_worker_means_504_at_the_deadline_and_the_job_ends_as_timeout(service, local_slot):
    photo = make_jpeg()
    started = time.monotonic()
    response = booth_post(
        service.port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    elapsed = time.monotonic() - started
    assert response.status == 504
    body = response.json()
    assert body == {
        "status": "timeout",
        "failure_reason": "provider_timeout",
        "message": body["message"],
        "job_id": body["job_id"],
    }
    assert TEST_SYNC_SECONDS - 0.5 <= elapsed <= TEST_SYNC_SECONDS + 2
    job = Job.objects.get(id=str(body["job_id"]))
    assert job.state == "timeout"
    assert job.finalized_at is not None
    assert files_under(service.media_root, "inputs") == []


def test_result_is_downloadable_until_retention_then_410(service, worker, local_slot):
    photo = make_jpeg()
    response = booth_post(
        service.port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    job_id = response.headers["x-job-id"]

    download = httpx.get(f"{service.base_url}/public/results/{job_id}")
    assert download.status_code == 200
    assert download.content == response.body
    assert download.headers["content-disposition"].startswith("attachment;")

    from django.utils import timezone

    Job.objects.filter(id=job_id).update(result_expires_at=timezone.now())
    gone = httpx.get(f"{service.base_url}/public/results/{job_id}")
    assert gone.status_code == 410
    assert gone.json()["failure_reason"] == "gone"


def test_unknown_result_ids_get_404(service, studio):
    for job_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = httpx.get(f"{service.base_url}/public/results/{job_id}")
        assert response.status_code == 404
        assert response.json()["failure_reason"] == "not_found"


def test_frame_template_is_overlaid_by_the_local_provider(service, worker, studio):
    from django.core.files.base import ContentFile

    from slots.models import SlotTemplateBinding, TemplateMedia
    from slots.services import template_media_save

    template = TemplateMedia(name="Red frame")
    template.file.save("frame.png", ContentFile(make_png(64, 48, transparent_center=True)), save=False)
    template_media_save(template=template)
    SlotTemplateBinding.objects.create(slot_id="slot-003", template=template, role="frame")
    configure(
        "slot-003", provider="local", operation="frame", settings={"output_format": "png"}, is_active=True
    )

    photo = make_jpeg()
    response = booth_post(
        service.port, "/ingest/slot-003", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    assert response.status == 200, response.body[:300]
    with Image.open(io.BytesIO(response.body)) as opened:
        image = opened.convert("RGB")
        assert image.getpixel((2, 2)) == (255, 0, 0)  # the frame's opaque border
        assert image.getpixel((320, 213)) != (255, 0, 0)  # the photo shows through the hole
