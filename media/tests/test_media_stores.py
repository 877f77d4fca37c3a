"""The media store, the filesystem and S3 alike: every test runs against both (``media_store``).

S3 is a local moto server reached with the real boto3 client, by this process and by the service's web
and worker processes (``media_service``), which get the same MEDIA_STORAGE/S3_* variables.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from io import BytesIO

import httpx
import pytest
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.utils import timezone

from conftest import S3_TEST_BUCKET, free_port, wait_until
from jobs.cleanup import cleanup_run
from jobs.history import jobs_prune
from jobs.models import Job
from jobs.tests.booth import make_jpeg, pad_jpeg
from jobs.tests.queue import make_finished_job
from media import storage
from media.models import MediaObject
from providers.tests.fakes.gemini import PNG_BYTES
from providers.tests.pipeline import configure_slot, post_photo

pytestmark = pytest.mark.django_db(transaction=True)

# Bigger than a download chunk, so it is streamed in pieces rather than answered whole.
BIG_PHOTO_BYTES = 2_500_000


def big_photo() -> bytes:
    return pad_jpeg(make_jpeg(), BIG_PHOTO_BYTES)


def where_stored(path: str, s3_environment: dict[str, str], media_root) -> set[str]:
    """Where a file really is, asked of the bucket and the disk directly (not through media.storage)."""
    import boto3

    places = set()
    if (media_root / path).exists():
        places.add("filesystem")
    client = boto3.client(
        "s3",
        endpoint_url=s3_environment["S3_ENDPOINT_URL"],
        region_name=s3_environment["S3_REGION"],
        aws_access_key_id=s3_environment["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_environment["S3_SECRET_ACCESS_KEY"],
    )
    if client.list_objects_v2(Bucket=S3_TEST_BUCKET, Prefix=path).get("KeyCount"):
        places.add("s3")
    return places


# --- the store itself, in this process -------------------------------------------------------------------


def test_a_stored_file_reads_back_whole_and_as_a_stream_of_exact_chunks(media_store):
    data = bytes(range(256)) * 12_000  # 3 MB
    path = "results/stream-test-" + media_store + f"-{time.monotonic_ns()}.bin"
    assert storage.write_new(path, data) == hashlib.sha256(data).hexdigest()
    assert storage.read(path) == data
    assert storage.size(path) == len(data)
    with storage.open_stream(path) as stream:
        chunks = [stream.read(100_000) for _ in range(31)]
    assert [len(chunk) for chunk in chunks] == [100_000] * 30 + [len(data) - 3_000_000]
    assert b"".join(chunks) == data
    with storage.open_read(path) as seekable:
        seekable.seek(len(data) - 10)
        assert seekable.read() == data[-10:]
    assert storage.delete(path)
    assert not storage.exists(path)


def test_a_missing_file_is_file_not_found_and_deleting_it_again_is_harmless(media_store):
    path = f"inputs/never-stored-{time.monotonic_ns()}.jpg"
    for read in (storage.read, storage.open_stream, storage.open_read, storage.size):
        with pytest.raises(FileNotFoundError):
            read(path)
    storage.delete(path)
    assert not storage.exists(path)


def test_an_upload_spooled_to_disk_is_stored_whole(media_store):
    photo = big_photo()
    upload = TemporaryUploadedFile("IMG_0001.JPG", "image/jpeg", len(photo), None)
    upload.write(photo)
    upload.flush()
    path = f"inputs/upload-{time.monotonic_ns()}.jpg"
    try:
        assert storage.write_new_from(path, upload) == len(photo)
    finally:
        upload.close()
    assert storage.read(path) == photo
    storage.delete(path)


def test_paths_outside_the_store_are_refused(media_store):
    for path in ("/etc/passwd", "../outside.jpg", "results/../../outside.jpg"):
        with pytest.raises(ValueError):
            storage.read(path)


def test_a_folder_lists_its_files_with_their_times_and_nothing_deeper(media_store):
    folder = f"results/listing-{media_store}-{time.monotonic_ns()}"
    before = timezone.now() - timedelta(seconds=5)
    for name in ("a.jpg", "b.png", "deeper/c.jpg"):
        storage.write_new(f"{folder}/{name}", b"x")
    listed = dict(storage.list_folder(folder))
    assert set(listed) == {f"{folder}/a.jpg", f"{folder}/b.png"}
    assert all(before <= modified <= timezone.now() + timedelta(seconds=5) for modified in listed.values())
    assert storage.list_folder(f"{folder}-never-written") == []
    for name in ("a.jpg", "b.png", "deeper/c.jpg"):
        storage.delete(f"{folder}/{name}")


def test_only_s3_gives_presigned_urls(media_store):
    path = f"results/presign-{time.monotonic_ns()}.jpg"
    storage.write_new(path, b"\xff\xd8\xff result")
    url = storage.presigned_url(path, expires_in=60, filename="x.jpg", mime_type="image/jpeg")
    if media_store == "s3":
        assert url is not None and f"/{S3_TEST_BUCKET}/{path}" in url and "X-Amz-Signature=" in url
        assert "X-Amz-Expires=60" in url
        assert httpx.get(url).content == b"\xff\xd8\xff result"
    else:
        assert url is None
    storage.delete(path)


# --- the service: web and worker processes on the same store ---------------------------------------------


def test_a_booth_photo_goes_through_the_store_and_only_its_result_and_thumbnails_stay(
    media_service, media_store, studio, s3_environment, service_media_root
):
    configure_slot("slot-001", "local", "sepia", {})
    media_service.start_worker()
    photo, response = post_photo(media_service, "slot-001", big_photo())
    assert response.status == 200, response.body[:300]
    assert response.body[:3] == b"\xff\xd8\xff"

    job = Job.objects.get(id=response.headers["x-job-id"])
    assert job.state == "succeeded"
    assert storage.read(job.result_path) == response.body
    assert where_stored(job.result_path, s3_environment, service_media_root) == {media_store}
    input_row = MediaObject.objects.get(job=job, kind="input")
    assert input_row.size_bytes == len(photo)
    assert wait_until(lambda: not storage.exists(input_row.path), 10.0), (
        "the input is deleted once the job is final"
    )
    assert wait_until(lambda: Job.objects.filter(id=job.id).exclude(result_thumbnail_path="").exists(), 10.0)
    job.refresh_from_db()
    assert storage.read(job.result_thumbnail_path)[:3] == b"\xff\xd8\xff"
    assert storage.read(job.input_thumbnail_path)[:3] == b"\xff\xd8\xff"


def test_a_result_download_streams_from_the_store(media_service, studio):
    result = big_photo()
    job = make_finished_job(result=result)
    response = httpx.get(f"{media_service.base_url}/public/results/{job.id}")
    assert response.status_code == 200
    assert response.content == result
    assert response.headers["content-length"] == str(len(result))
    assert response.headers["content-disposition"] == f'attachment; filename="photochanger-{job.id}.jpg"'


def test_presigned_downloads_redirect_to_the_bucket_on_s3_and_stream_from_disk(media_service, studio):
    result = make_jpeg(320, 200)
    job = make_finished_job(result=result)
    port = free_port()
    web = media_service.start_web_process(port, {"S3_PRESIGNED_DOWNLOADS": "true"})
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/public/results/{job.id}")
    finally:
        web.stop()
    if media_service.env.get("MEDIA_STORAGE") == "s3":
        assert response.status_code == 302
        assert response.headers["cache-control"] == "no-store"
        location = response.headers["location"]
        assert location.startswith(media_service.env["S3_ENDPOINT_URL"]) and "X-Amz-Signature=" in location
        downloaded = httpx.get(location)
        assert downloaded.status_code == 200
        assert downloaded.content == result
        assert "attachment" in downloaded.headers.get("content-disposition", "")
    else:
        assert response.status_code == 200
        assert response.content == result


def test_a_presigned_url_never_outlives_the_result(media_service, studio):
    job = make_finished_job(result_expires_in=timedelta(minutes=1, seconds=30))  # about 30 s left
    port = free_port()
    web = media_service.start_web_process(port, {"S3_PRESIGNED_DOWNLOADS": "true"})
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/public/results/{job.id}")
    finally:
        web.stop()
    if media_service.env.get("MEDIA_STORAGE") == "s3":
        assert response.status_code == 302
        expires = int(httpx.URL(response.headers["location"]).params["X-Amz-Expires"])
        assert job.result_expires_at is not None
        left = (job.result_expires_at - timezone.now()).total_seconds()
        assert 1 <= expires <= left + 1 < 300, "the retention's end, not the usual 300 s"
    else:
        assert response.status_code == 200


def share(job: Job) -> str:
    """Give a finished job the share token a worker gives it; returns the token."""
    from jobs.share import share_token_new

    token = share_token_new()
    Job.objects.filter(id=job.id).update(share_token=token)
    return token


def test_the_guests_share_page_serves_the_result_from_the_store(media_service, studio):
    result = big_photo()
    job = make_finished_job(result=result)
    token = share(job)
    image = httpx.get(f"{media_service.base_url}/s/{token}/image")
    assert image.status_code == 200
    assert image.content == result
    download = httpx.get(f"{media_service.base_url}/s/{token}/download")
    assert download.content == result
    assert download.headers["content-disposition"].startswith("attachment;")


def test_gemini_and_openai_get_the_photo_and_template_streamed_from_the_store(
    media_service, studio, fake_gemini, fake_openai
):
    from providers.tests.pipeline import bind_template

    configure_slot("slot-005", "gemini", "image_edit", {"prompt": "art", "model": "gemini-2.5-flash-image"})
    configure_slot("slot-006", "openai", "image_edit", {"prompt": "art", "output_format": "png"})
    style = make_jpeg(1200, 900, noise=True)
    for slot_id in ("slot-005", "slot-006"):
        bind_template(slot_id, "style_reference", "Style", style)
    media_service.start_worker()
    photo = big_photo()  # several chunks, each base64-encoded on its own for Gemini
    for slot_id in ("slot-005", "slot-006"):
        _photo, response = post_photo(media_service, slot_id, photo)
        assert response.status == 200, response.body[:300]

    parts = fake_gemini.requests[0]["body"]["contents"][0]["parts"]
    assert parts[0]["inline_data"] == {"mime_type": "image/jpeg", "data": len(photo)}, (
        "whole and valid base64"
    )
    assert parts[1]["inline_data"] == {"mime_type": "image/jpeg", "data": len(style)}
    assert [image["length"] for image in fake_openai.requests[0]["images"]] == [len(photo), len(style)]


def test_turbotext_downloads_the_photo_through_a_temporary_link(media_service, studio, fake_turbotext):
    configure_slot(
        "slot-008", "turbotext", "image2image", {"prompt": "супергерой", "poll_interval_seconds": 0.3}
    )
    media_service.start_worker()
    photo, response = post_photo(media_service, "slot-008", big_photo())
    assert response.status == 200, response.body[:300]
    assert response.body == PNG_BYTES

    create = next(request for request in fake_turbotext.requests if request["do"] == "create_queue")
    link = create["fields"]["url"]
    assert link.startswith(f"{media_service.base_url}/public/media/")
    assert create["downloads"][link]["status"] == 200
    assert create["downloads"][link]["length"] == len(photo), "the whole photo, streamed from the store"
    assert httpx.get(link).status_code == 410, "the link dies with the job"


def test_cleanup_deletes_expired_results_and_thumbnails_from_the_store(media_service, studio):
    job = make_finished_job(result_expires_in=timedelta(seconds=0))
    paths = [job.result_path, job.result_thumbnail_path]
    assert all(storage.exists(path) for path in paths)

    report = cleanup_run()
    assert report.results_removed == 1
    assert report.thumbnails_removed >= 1
    assert not any(storage.exists(path) for path in paths)
    gone = httpx.get(f"{media_service.base_url}/public/results/{job.id}")
    assert gone.status_code == 410


def test_cleanup_deletes_the_inputs_of_overdue_jobs_from_the_store(media_service, studio):
    past = timezone.now() - timedelta(minutes=5)
    job = Job.objects.create(
        slot_id="slot-001", provider="local", created_at=past, expires_at=past + timedelta(seconds=48)
    )
    path = storage.input_path(job.id, "image/jpeg")
    storage.write_new(path, make_jpeg())
    MediaObject.objects.create(
        job=job, kind="input", path=path, mime_type="image/jpeg", created_at=past, expires_at=job.expires_at
    )

    report = cleanup_run()
    assert (report.timed_out_jobs, report.media_files_removed) == (1, 1)
    assert not storage.exists(path)


def test_prune_history_deletes_old_results_and_thumbnails_from_the_store(media_service, studio):
    old = make_finished_job(
        created_at=timezone.now() - timedelta(days=200), result_expires_in=timedelta(days=365)
    )
    paths = [old.result_path, old.result_thumbnail_path, old.input_thumbnail_path]
    assert all(storage.exists(path) for path in paths)

    assert jobs_prune(before=timezone.now() - timedelta(days=90)) == (1, 1)
    assert not Job.objects.filter(id=old.id).exists()
    assert not any(storage.exists(path) for path in paths)


def test_template_previews_are_made_from_the_store(media_service, studio):
    from django.core.files.base import ContentFile

    from jobs.tests.booth import make_png
    from slots.models import TemplateMedia
    from slots.services import template_media_save, template_thumbnail_path

    template = TemplateMedia(name="Frame")
    template.file.save("frame.png", ContentFile(make_png(640, 480)), save=False)
    template_media_save(template=template)
    assert storage.exists(str(template.file.name))
    preview = template_thumbnail_path(template=template)
    assert preview is not None
    from PIL import Image

    with Image.open(BytesIO(storage.read(preview))) as image:
        assert max(image.size) == 240
    assert template_thumbnail_path(template=template) == preview, "made once"


# --- S3 unreachable or refusing: 503, never 500, nothing half-stored -------------------------------------


@pytest.mark.parametrize(
    "broken",
    [{"S3_ENDPOINT_URL": "http://127.0.0.1:{closed_port}"}, {"S3_BUCKET": "no-such-bucket"}],
    ids=["unreachable", "no-such-bucket"],
)
def test_a_store_that_fails_gets_the_booth_a_503_and_creates_no_job(s3_service, studio, broken, settings):
    from photochanger.storage_settings import media_storage_config
    from stats.models import ProcessingLogEntry

    settings.STORAGES = {**settings.STORAGES, "default": media_storage_config(s3_service.env)}
    configure_slot("slot-001", "local", "sepia", {})
    stored = make_finished_job()  # a result the broken store cannot serve
    closed_port = free_port()
    port = free_port()
    environment = {name: value.format(closed_port=closed_port) for name, value in broken.items()}
    web = s3_service.start_web_process(port, environment)
    try:
        photo = make_jpeg()
        from conftest import INGEST_PASSWORD
        from jobs.tests.booth import booth_fields, booth_post, multipart_body

        response = booth_post(
            port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
        )
        download = httpx.get(f"http://127.0.0.1:{port}/public/results/{stored.id}", timeout=30)
        shared = httpx.get(f"http://127.0.0.1:{port}/s/{share(stored)}/image", timeout=30)
    finally:
        web.stop()
    assert response.status == 503, response.body[:300]
    assert response.json()["failure_reason"] == "service_unavailable"
    assert Job.objects.exclude(id=stored.id).count() == 0, "no job without its photo"
    assert ProcessingLogEntry.objects.filter(failure_reason="service_unavailable").count() == 1
    assert download.status_code == 503
    assert download.json()["failure_reason"] == "service_unavailable"
    assert shared.status_code == 503, "the guest's share image: not gone, not a server error"
    assert response.elapsed < 15, "boto3 gives up within a few seconds (3 attempts), well inside the window"


def test_cleanup_sweeps_files_no_row_keeps_from_the_store(media_service, studio):
    import uuid

    kept = make_finished_job(result_expires_in=timedelta(hours=72))
    orphans = [
        f"results/{uuid.uuid4()}-dd.png",  # a worker killed between storing a result and its finalize
        f"inputs/{uuid.uuid4()}.jpg",  # a web process killed between storing the photo and the job
    ]
    for path in orphans:
        storage.write_new(path, b"bytes")

    # Every file counts as old enough: an S3 object's time cannot be set back as a file's can.
    report = cleanup_run(orphan_min_age=timedelta(minutes=-1))
    assert report.orphan_files_removed >= len(orphans)
    assert not any(storage.exists(path) for path in orphans)
    assert all(storage.exists(path) for path in (kept.result_path, kept.result_thumbnail_path))


def test_a_staff_test_run_on_a_store_that_is_down_is_refused_on_the_page(s3_environment, studio, settings):
    from jobs.slot_test_runs import TestRunRefused, sample_photo, slot_test_run_start
    from photochanger.storage_settings import media_storage_config
    from slots.models import Slot

    broken = {**s3_environment, "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    settings.STORAGES = {**settings.STORAGES, "default": media_storage_config(broken)}
    configure_slot("slot-001", "local", "sepia", {})
    with pytest.raises(TestRunRefused) as refused:
        slot_test_run_start(slot=Slot.objects.get(id="slot-001"), upload=sample_photo(), sample=True)
    from photochanger.errors import FailureReason

    assert refused.value.problems == [str(FailureReason.SERVICE_UNAVAILABLE.label)]  # "Сервис недоступен"
    assert not Job.objects.exists()


def test_a_template_preview_on_a_store_that_is_down_is_none_not_an_error(s3_environment, studio, settings):
    from django.core.files.base import ContentFile

    from jobs.tests.booth import make_png
    from photochanger.storage_settings import media_storage_config
    from slots.models import TemplateMedia
    from slots.services import template_media_save, template_thumbnail_path

    settings.STORAGES = {**settings.STORAGES, "default": media_storage_config(s3_environment)}
    template = TemplateMedia(name="Frame")
    template.file.save("frame.png", ContentFile(make_png(64, 48)), save=False)
    template_media_save(template=template)
    broken = {**s3_environment, "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    settings.STORAGES = {**settings.STORAGES, "default": media_storage_config(broken)}
    assert template_thumbnail_path(template=template) is None
