"""Photos of every size a booth really sends, through the booth's exact request (Expect: 100-continue,
DSLR Remote Pro's fields), the photos refused from their header (too many pixels, unreadable) and the
ones refused because their image data is incomplete (a truncated upload).

A 20-megapixel camera writes 5–8 MB JPEGs; Django spools uploads above FILE_UPLOAD_MAX_MEMORY_SIZE to
disk, which must work exactly like a small photo in memory.
"""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from conftest import INGEST_PASSWORD, wait_until
from jobs.models import Job
from jobs.tests.booth import (
    booth_fields,
    booth_post,
    make_dslr_jpeg,
    make_jpeg,
    make_png,
    make_png_bomb,
    multipart_body,
    pad_jpeg,
)
from slots.models import Slot, StudioSettings
from stats.models import LogEvent, ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)

SLOT_LIMIT_MB = 9


@pytest.fixture
def grayscale_slot(studio):
    # A 20-megapixel photo takes the local provider about a second; leave room on a busy machine.
    StudioSettings.objects.update(sync_response_seconds=20)
    Slot.objects.filter(id="slot-001").update(
        provider="local",
        operation="grayscale",
        settings={"output_format": "jpeg"},
        size_limit_mb=SLOT_LIMIT_MB,
        is_active=True,
    )


def dslr_photo() -> bytes:
    return make_dslr_jpeg()


def photo_of(size_class: str) -> tuple[bytes, tuple[int, int]]:
    if size_class == "200 KB":
        return make_jpeg(640, 427, quality=95, noise=True), (640, 427)
    if size_class == "3 MB":
        return make_jpeg(2400, 1600, quality=95, noise=True), (2400, 1600)
    if size_class == "6.5 MB, 5472×3648":
        return dslr_photo(), (5472, 3648)
    # Just under the slot limit: the DSLR photo grown with JPEG comment segments.
    return pad_jpeg(dslr_photo(), SLOT_LIMIT_MB * 1024 * 1024 - 1024), (5472, 3648)


@pytest.mark.parametrize("size_class", ["200 KB", "3 MB", "6.5 MB, 5472×3648", "just under the slot limit"])
def test_photos_of_every_size_a_booth_sends_come_back_processed(service, worker, grayscale_slot, size_class):
    photo, dimensions = photo_of(size_class)
    response = booth_post(
        service.port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )

    assert response.got_continue
    assert response.status == 200, response.body[:300]
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.body)) as result:
        assert result.size == dimensions
        red, green, blue = result.convert("RGB").getpixel((dimensions[0] // 2, dimensions[1] // 2))  # type: ignore[misc]
        assert abs(red - green) <= 2 and abs(green - blue) <= 2, "the provider really processed it"
    job = Job.objects.get(id=uuid.UUID(response.headers["x-job-id"]))
    assert job.state == "succeeded"
    assert job.request_metadata["_upload"] == {
        "field": "fileToUpload",
        "filename": "IMG_0003.JPG",
        "content_type": "image/jpeg",
        "size_bytes": len(photo),
    }
    # Released by the worker right after the finalize (or once the staff preview of it is recorded).
    assert wait_until(lambda: not list((service.media_root / "inputs").glob(f"{job.id}*")), 10), (
        "the input is gone once the job is final"
    )


def _assert_refused(service, response, status, reason, words):
    assert response.status == status, response.body[:300]
    body = response.json()
    assert body["failure_reason"] == reason
    assert words in body["message"]
    assert Job.objects.count() == 0, "no job"
    assert list((service.media_root / "inputs").glob("*")) == [], "no file"
    entry = ProcessingLogEntry.objects.get(event=LogEvent.INGEST_REJECTED)
    assert entry.failure_reason == reason


def test_a_decompression_bomb_gets_413_from_its_header_and_reaches_no_provider(
    service, worker, grayscale_slot
):
    bomb = make_png_bomb(20000, 20000)  # 0.4 MB on the wire, 400 megapixels decoded
    body = multipart_body(booth_fields(bomb, INGEST_PASSWORD), photo=bomb, content_type="image/png")
    response = booth_post(service.port, "/ingest/slot-001", body)
    _assert_refused(service, response, 413, "payload_too_large", "too many pixels")


def test_a_photo_just_over_the_pixel_cap_is_refused_with_its_size(service, worker, grayscale_slot):
    big = make_png_bomb(10000, 5001)  # 50.01 megapixels: under Pillow's own limit, over ours
    body = multipart_body(booth_fields(big, INGEST_PASSWORD), photo=big, content_type="image/png")
    response = booth_post(service.port, "/ingest/slot-001", body)
    _assert_refused(service, response, 413, "payload_too_large", "10000×5001")


def test_the_pixel_cap_is_configurable(service, grayscale_slot):
    from conftest import free_port

    port = free_port()
    web = service.start_web_process(port, {"INGEST_MAX_PIXELS": "100000"})
    try:
        photo = make_jpeg(640, 427)  # 273,280 pixels
        response = booth_post(
            port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
        )
    finally:
        web.stop()
    _assert_refused(service, response, 413, "payload_too_large", "0.1 megapixels")


def test_bytes_that_only_start_like_a_jpeg_get_415_as_damaged(service, grayscale_slot):
    fake = b"\xff\xd8\xff\xe0" + b"this is not really a photo" * 100
    response = booth_post(
        service.port, "/ingest/slot-001", multipart_body(booth_fields(fake, INGEST_PASSWORD), photo=fake)
    )
    _assert_refused(service, response, 415, "unsupported_media_type", "damaged")


@pytest.mark.parametrize(
    "damaged",
    ["DSLR JPEG cut in half", "DSLR JPEG without its last 100 bytes", "PNG cut short"],
)
def test_a_truncated_photo_gets_415_damaged_or_incomplete_and_becomes_no_job(
    service, worker, grayscale_slot, damaged
):
    if damaged == "PNG cut short":
        whole = make_png(1200, 800)
        photo, content_type = whole[: len(whole) - 40], "image/png"
    else:
        whole = dslr_photo()  # 6.5 MB: the upload is spooled to a temporary file, not kept in memory
        kept = len(whole) // 2 if "half" in damaged else len(whole) - 100
        photo, content_type = whole[:kept], "image/jpeg"
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo, content_type=content_type)
    response = booth_post(service.port, "/ingest/slot-001", body)
    _assert_refused(service, response, 415, "unsupported_media_type", "damaged or incomplete image")
