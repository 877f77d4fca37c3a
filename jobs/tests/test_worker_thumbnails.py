"""The worker makes each job's staff previews once: the input's after the claim, the result's with the
result; a preview that cannot be made never fails the job; a worker that loses its job removes them."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from jobs import services
from jobs.models import Job
from jobs.states import JobState
from jobs.tests.booth import make_jpeg
from jobs.tests.queue import make_pending_job
from jobs.worker import THUMBNAIL_THREADS, Worker, thumbnail_executor
from media.models import MediaObject
from photochanger.db import db_call

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = timedelta(seconds=30)


@pytest.fixture
def queue(studio, media_root, worker_threads_closed, settings, fake_gemini):
    settings.GEMINI_API_BASE = fake_gemini.base_url
    return media_root


def run_worker_until_drained(worker: Worker, before_drain: Callable[[], Any] | None = None) -> None:
    async def scenario() -> None:
        async with worker.http_clients():
            await worker.claim_step()
            if before_drain is not None:
                await before_drain()
            await asyncio.wait_for(worker.drain(), timeout=30)

    asyncio.run(scenario())


def thumbnail_files(media_root: Path) -> list[Path]:
    folder = media_root / "thumbnails"
    return sorted(folder.iterdir()) if folder.exists() else []


async def eventually_async(
    read: Callable[[], Any], predicate: Callable[[Any], bool], timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(await read()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_a_finished_job_records_small_jpeg_previews_of_its_input_and_its_result(queue):
    job = make_pending_job(provider="local", operation="grayscale", settings={}, photo=make_jpeg(1600, 1200))

    run_worker_until_drained(Worker(concurrency=4, lease=LEASE))

    row = Job.objects.get(id=job.id)
    assert row.state == "succeeded"
    assert row.input_thumbnail_path.startswith(f"thumbnails/{job.id}-input-")
    assert row.result_thumbnail_path.startswith(f"thumbnails/{job.id}-result-")
    for path in (row.input_thumbnail_path, row.result_thumbnail_path):
        image = Image.open(io.BytesIO((queue / path).read_bytes()))
        assert (image.format, image.size) == ("JPEG", (320, 240))
    result = Image.open(queue / row.result_thumbnail_path).convert("RGB")
    red, green, blue = result.getpixel((100, 100))  # type: ignore[misc]
    assert abs(red - green) <= 3 and abs(green - blue) <= 3, "the result preview is the grayscale result"
    assert len(thumbnail_files(queue)) == 2
    assert not (queue / "inputs").exists() or not any((queue / "inputs").iterdir()), "the input was deleted"


def test_the_answer_never_waits_for_the_input_thumbnail_which_is_recorded_once_made(queue):
    # Both thumbnail threads are busy: the provider's answer is ready before the input's thumbnail.
    gate = threading.Event()
    busy = [thumbnail_executor().submit(gate.wait) for _ in range(THUMBNAIL_THREADS)]
    job = make_pending_job(provider="local", operation="sepia", settings={})
    worker = Worker(concurrency=4, lease=LEASE)
    seen: dict[str, Any] = {}

    def state() -> tuple[str, str]:
        return Job.objects.filter(id=job.id).values_list("state", "input_thumbnail_path").get()

    async def finalized_then_thumbnail_made() -> None:
        await eventually_async(lambda: db_call(state), lambda row: row[0] == "succeeded")
        seen["at_finalize"] = await db_call(state)
        seen["input_kept"] = sorted(path.name for path in (queue / "inputs").iterdir())
        gate.set()

    try:
        run_worker_until_drained(worker, finalized_then_thumbnail_made)
    finally:
        gate.set()
        for future in busy:
            future.result(timeout=5)

    assert seen["at_finalize"] == ("succeeded", ""), "finalized (the booth answered) without waiting"
    assert len(seen["input_kept"]) == 1, "the photo was kept for its thumbnail"
    row = Job.objects.get(id=job.id)
    assert row.input_thumbnail_path.startswith(f"thumbnails/{job.id}-input-")
    assert (queue / row.input_thumbnail_path).exists()
    assert len(thumbnail_files(queue)) == 2, "one input and one result thumbnail, nothing else"
    assert list((queue / "inputs").iterdir()) == [], "then the photo was deleted"
    assert not MediaObject.objects.filter(job_id=job.id, deleted_at__isnull=True).exists()


def test_a_photo_that_cannot_be_previewed_still_gets_its_result(queue, fake_gemini):
    # Gemini takes the bytes as they are; only the preview needs to decode them.
    job = make_pending_job(photo=b"\xff\xd8\xff\xe0" + b"damaged" * 100)

    run_worker_until_drained(Worker(concurrency=4, lease=LEASE))

    row = Job.objects.get(id=job.id)
    assert row.state == "succeeded", row.failure_message
    assert row.input_thumbnail_path == ""
    assert row.result_thumbnail_path != "" and (queue / row.result_thumbnail_path).exists()
    assert fake_gemini.calls == 1


def test_a_job_cancelled_while_its_provider_works_leaves_no_previews_behind(queue, fake_gemini):
    fake_gemini.default_mode = "hang"
    job = make_pending_job()
    worker = Worker(concurrency=4, lease=LEASE)

    async def cancel_then_notice() -> None:
        await eventually(lambda: fake_gemini.inflight == 1)
        await eventually(lambda: len(thumbnail_files(queue)) == 1)  # the input's preview was made
        assert await db_call(services.job_cancel, job_id=job.id, message="staff")
        await worker.housekeeping_step()  # the worker learns the job is not its own any more

    run_worker_until_drained(worker, cancel_then_notice)

    asyncio.run(eventually(lambda: thumbnail_files(queue) == []))
    row = Job.objects.get(id=job.id)
    assert (row.state, row.input_thumbnail_path, row.result_thumbnail_path) == ("cancelled", "", "")
    assert worker.stats.lost == 1


def test_a_worker_whose_finalize_loses_removes_its_result_and_previews(queue, fake_gemini):
    fake_gemini.delay = 0.5
    job = make_pending_job()
    worker = Worker(concurrency=4, lease=LEASE)

    async def cancel_before_the_answer() -> None:
        await eventually(lambda: fake_gemini.inflight == 1)
        # No housekeeping step runs: the worker only finds out when its finalize changes nothing.
        assert await db_call(services.job_cancel, job_id=job.id, message="staff")

    run_worker_until_drained(worker, cancel_before_the_answer)

    row = Job.objects.get(id=job.id)
    assert (row.state, row.input_thumbnail_path, row.result_thumbnail_path) == ("cancelled", "", "")
    assert worker.stats.lost == 1
    assert thumbnail_files(queue) == []
    assert not (queue / "results").exists() or list((queue / "results").iterdir()) == []


def test_a_second_finalize_of_a_job_keeps_the_previews_recorded_by_the_first(queue):
    job = make_pending_job(provider="local", operation="sepia", settings={})
    run_worker_until_drained(Worker(concurrency=4, lease=LEASE))
    first = Job.objects.get(id=job.id)
    files = thumbnail_files(queue)

    late = services.Outcome(
        state=JobState.SUCCEEDED,
        result=services.StoredResult(
            path="results/other.jpg",
            mime_type="image/jpeg",
            size_bytes=1,
            sha256="x",
            thumbnail_path="thumbnails/other.jpg",
        ),
        input_thumbnail_path="thumbnails/other-input.jpg",
    )
    assert not services.job_finalize(job_id=job.id, outcome=late)

    again = Job.objects.get(id=job.id)
    assert (again.input_thumbnail_path, again.result_thumbnail_path) == (
        first.input_thumbnail_path,
        first.result_thumbnail_path,
    )
    assert thumbnail_files(queue) == files, "no preview was made again"
