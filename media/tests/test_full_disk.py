"""A full disk, proven on a real one: a small tmpfs mounted as the MEDIA_ROOT (or the temporary folder) of
a web process and a worker of their own, filled with a ballast file.

Whatever cannot be written — the booth's photo, the provider's result, the upload's temporary copy —
the booth gets 503 ``service_unavailable`` saying the server's disk is full, no partial file stays
behind, and once the ballast is deleted the same processes serve the next photo. Mounting needs root
(as in CI and the dev container); elsewhere these tests are skipped, saying so.
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import INGEST_PASSWORD, TEST_SYNC_SECONDS, Service, free_port, wait_until
from jobs.models import Job
from jobs.tests.booth import BoothResponse, booth_fields, booth_post, make_jpeg, multipart_body, pad_jpeg
from providers.tests.pipeline import configure_slot
from stats.models import LogEvent, ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)

SLOT = "slot-004"
DISK_BYTES = 16 * 1024 * 1024
# Over FILE_UPLOAD_MAX_MEMORY_SIZE (4 MB): received into a temporary file, and parsed into another one.
LARGE_PHOTO_BYTES = 5 * 1024 * 1024
DISK_FULL = "The server's disk is full"
FILL_STEP_BYTES = 1024 * 1024


class SmallDisk:
    """A tmpfs of DISK_BYTES; ``fill`` leaves it with ``leave`` bytes free, ``empty`` frees it again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ballast = root / "ballast"

    def fill(self, *, leave: int = 0) -> None:
        # In steps, measuring again each time: the service's processes may write while it fills.
        with open(self.ballast, "ab") as handle:
            for _ in range(10_000):
                missing = self.free() - leave
                if missing <= 0:
                    return
                try:
                    size = os.fstat(handle.fileno()).st_size
                    os.posix_fallocate(handle.fileno(), size, min(missing, FILL_STEP_BYTES))
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
        raise AssertionError("the small disk could not be filled")

    def free(self) -> int:
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize

    def empty(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def files(self, folder: str) -> list[Path]:
        return sorted(path for path in (self.root / folder).rglob("*") if path.is_file())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs as a small disk needs root")
    root = tmp_path / "small-disk"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0755", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        (root / "media").mkdir()
        (root / "tmp").mkdir()
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", str(root)], check=False)


class OnSmallDisk:
    """A web process and a worker of their own whose media (or temporary files) are on the small disk."""

    def __init__(self, service: Service, env: dict[str, str]) -> None:
        self.service = service
        self.port = free_port()
        self.web = service.start_web_process(self.port, env)
        self.worker = service.start_worker(env=env)

    def post(self, photo: bytes | None = None) -> BoothResponse:
        photo = photo if photo is not None else make_jpeg()
        body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
        return booth_post(self.port, f"/ingest/{SLOT}", body)

    def stop(self) -> None:
        self.worker.stop()
        self.service.workers.remove(self.worker)
        self.web.stop()


@pytest.fixture
def gemini_slot(studio: Any, fake_gemini: Any) -> Any:
    configure_slot(SLOT, "gemini", "image_edit", {"prompt": "watercolor"})
    return fake_gemini


@pytest.fixture
def media_on_small_disk(service: Service, small_disk: SmallDisk, gemini_slot: Any) -> Iterator[OnSmallDisk]:
    processes = OnSmallDisk(service, {"MEDIA_ROOT": str(small_disk.root / "media")})
    yield processes
    processes.stop()


@pytest.fixture
def temp_on_small_disk(service: Service, small_disk: SmallDisk, gemini_slot: Any) -> Iterator[OnSmallDisk]:
    processes = OnSmallDisk(service, {"TMPDIR": str(small_disk.root / "tmp")})
    yield processes
    processes.stop()


def assert_disk_full_answer(response: BoothResponse, what: str) -> dict[str, Any]:
    assert response.status == 503, response.body[:300]
    body = response.json()
    assert body["failure_reason"] == "service_unavailable"
    assert body["message"] == f"{DISK_FULL}: {what} could not be stored."
    return body


def assert_rejected_without_a_job(*, jobs_before: int = 0) -> None:
    assert Job.objects.count() == jobs_before
    rejection = ProcessingLogEntry.objects.get(event=LogEvent.INGEST_REJECTED)
    assert (rejection.http_status, rejection.failure_reason) == (503, "service_unavailable")


def test_a_photo_on_a_full_disk_gets_503_leaves_no_job_or_file_and_the_next_one_is_served(
    small_disk, media_on_small_disk
):
    small_disk.fill()

    refused = media_on_small_disk.post()

    assert_disk_full_answer(refused, "the photo")
    assert_rejected_without_a_job()
    assert small_disk.files("media") == []

    small_disk.empty()
    served = media_on_small_disk.post()
    assert served.status == 200, served.body[:300]
    assert served.headers["content-type"] == "image/png"
    job = Job.objects.get(state="succeeded")
    results = small_disk.files("media/results")
    assert [path.relative_to(small_disk.root / "media").as_posix() for path in results] == [job.result_path]


def test_a_result_on_a_full_disk_fails_the_job_with_503_and_the_next_photo_is_served(
    small_disk, media_on_small_disk, gemini_slot
):
    gemini_slot.delay = 1.5  # the photo is stored, then the disk fills while the provider works
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(media_on_small_disk.post)
        assert wait_until(lambda: Job.objects.filter(state="processing").exists(), TEST_SYNC_SECONDS)
        small_disk.fill()
        refused = answer.result(timeout=TEST_SYNC_SECONDS + 5)

    body = assert_disk_full_answer(refused, "the result")
    job = Job.objects.get(id=body["job_id"])
    assert (job.state, job.failure_reason) == ("failed", "service_unavailable")
    assert job.failure_message == f"{DISK_FULL}: the result could not be stored."
    assert job.result_path == ""
    assert small_disk.files("media/results") == []
    assert wait_until(lambda: small_disk.files("media/inputs") == [], 2), "the photo goes with its job"

    small_disk.empty()
    gemini_slot.delay = 0
    served = media_on_small_disk.post()
    assert served.status == 200, served.body[:300]
    assert len(small_disk.files("media/results")) == 1


def test_an_upload_whose_temporary_copy_meets_a_full_disk_gets_503_and_leaves_nothing(
    small_disk, temp_on_small_disk
):
    photo = pad_jpeg(make_jpeg(), LARGE_PHOTO_BYTES)
    served_before = temp_on_small_disk.post(photo)
    assert served_before.status == 200, "the temporary folder is in use (Python picks it on first use)"
    small_disk.fill()

    refused = temp_on_small_disk.post(photo)

    assert_disk_full_answer(refused, "the upload")
    assert_rejected_without_a_job(jobs_before=1)
    assert small_disk.files("tmp") == []  # a received body is spooled to an unnamed file

    small_disk.empty()
    served = temp_on_small_disk.post(photo)
    assert served.status == 200, served.body[:300]


def test_a_photo_whose_parsed_copy_meets_a_full_disk_gets_503_and_leaves_nothing(
    small_disk, temp_on_small_disk
):
    photo = pad_jpeg(make_jpeg(), LARGE_PHOTO_BYTES)
    served_before = temp_on_small_disk.post(photo)
    assert served_before.status == 200, "the temporary folder is in use (Python picks it on first use)"
    # Room for the received body, not for the parser's copy of the photo as well.
    small_disk.fill(leave=LARGE_PHOTO_BYTES + 1024 * 1024)

    refused = temp_on_small_disk.post(photo)

    assert_disk_full_answer(refused, "the photo")
    assert_rejected_without_a_job(jobs_before=1)
    assert wait_until(lambda: small_disk.files("tmp") == [], 2), small_disk.files("tmp")

    small_disk.empty()
    served = temp_on_small_disk.post(photo)
    assert served.status == 200, served.body[:300]
