"""Processes die or are stopped under load: real uvicorn and run_worker processes, the test database.

- a web process SIGKILLed while booths wait on it;
- workers SIGKILLed every two seconds while 15 booths post;
- SIGTERM to a web process and a worker while 15 booths post.

Every booth photo has a size of its own, so the fake provider's records (each image part's decoded
length) say which job every provider call was for. The service here has a media folder of its own, so
what is left on disk is this test's alone.
"""

from __future__ import annotations

import itertools
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.db.models import Count
from django.utils import timezone

from conftest import (
    INGEST_PASSWORD,
    Service,
    ServiceProcess,
    database_url,
    free_port,
    service_environment,
    wait_until,
)
from jobs.cleanup import cleanup_run, orphan_files
from jobs.models import Job
from jobs.states import LIVE_STATES
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body, pad_jpeg
from slots.models import Slot
from slots.services import StudioSettingsChange, studio_settings_update
from stats.models import ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)

BOOTHS = 15
BASE_PHOTO = make_jpeg(160, 120)
_photo_sizes = itertools.count(len(BASE_PHOTO) + 1000, 17)


def unique_photo() -> bytes:
    """A booth photo no other request of this module sends: its size names its job at the provider."""
    return pad_jpeg(BASE_PHOTO, next(_photo_sizes))


@dataclass
class Attempt:
    photo_size: int
    status: int | None = None  # None: the request got no HTTP answer (refused or reset)
    error: str = ""
    job_id: str = ""
    body: bytes = b""


def post(port: int, slot_id: str, photo: bytes, *, timeout: float = 60) -> Attempt:
    attempt = Attempt(photo_size=len(photo))
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    try:
        response = booth_post(port, f"/ingest/{slot_id}", body, timeout=timeout)
    except (OSError, IndexError, ValueError) as error:  # refused, reset, or cut off mid-answer
        attempt.error = error.__class__.__name__
        return attempt
    attempt.status, attempt.body = response.status, response.body
    attempt.job_id = response.headers.get("x-job-id", "") or (
        response.json().get("job_id", "") if response.status != 200 else ""
    )
    return attempt


def live_jobs() -> int:
    return Job.objects.filter(state__in=list(LIVE_STATES)).count()


def upload_size(job: Job) -> int:
    return int(job.request_metadata["_upload"]["size_bytes"])


def provider_calls_by_photo_size(fake_gemini: Any) -> Counter[int]:
    """How many generateContent calls the fake received for each photo (by the photo part's size)."""
    calls: Counter[int] = Counter()
    for request in list(fake_gemini.requests):
        calls[request["body"]["contents"][0]["parts"][0]["inline_data"]["data"]] += 1
    return calls


class PrivateService(Service):
    """The conftest service with its own media folder, and every web process it started stopped at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path, media_root: Path) -> None:
        super().__init__(env, log_dir, media_root)
        self.webs: list[ServiceProcess] = []

    def start_web_process(self, port: int, env: dict[str, str]) -> ServiceProcess:
        web = super().start_web_process(port, env)
        self.webs.append(web)
        return web

    def stop_all(self) -> None:
        self.stop_workers()
        for web in self.webs:
            web.stop()


@pytest.fixture
def private_service(
    transactional_db: None,
    fake_gemini: Any,
    fake_openai: Any,
    fake_turbotext: Any,
    tmp_path: Path,
    settings: Any,
) -> Iterator[PrivateService]:
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media  # cleanup in this process judges the same files
    environment = service_environment(
        database_url=database_url(), media_root=media, fake_gemini=fake_gemini, fake_openai=fake_openai,
        fake_turbotext=fake_turbotext,
    )  # fmt: skip
    service = PrivateService(environment, tmp_path, media)
    try:
        yield service
    finally:
        service.stop_all()


@pytest.fixture
def gemini_booths(studio: Any, fake_gemini: Any, settings: Any) -> list[str]:
    """All 15 slots on (fake) Gemini."""
    Slot.objects.update(
        provider="gemini", operation="image_edit", settings={"prompt": "make it art"}, is_active=True
    )
    return [f"slot-{n:03d}" for n in range(1, BOOTHS + 1)]


def set_sync_window(seconds: int, settings: Any) -> None:
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=seconds))


def files_without_a_row(media_root: Path) -> list[str]:
    """Every file under inputs/, results/, thumbnails/ that no row keeps, however young."""
    assert Path(django_settings.MEDIA_ROOT) == media_root
    return orphan_files(older_than=timezone.now() + timedelta(days=1))


def no_files_without_a_row(media_root: Path) -> bool:
    """Whether every file is kept by a row, within a few seconds: a finalize commits first, then the
    process that made it deletes the files it released (a moment later)."""
    return wait_until(lambda: files_without_a_row(media_root) == [], timeout=10)


# --- A web process is killed while booths wait ---------------------------------------------------------


def test_jobs_of_booths_waiting_on_a_killed_web_process_finish_and_stay_downloadable(
    private_service, gemini_booths, fake_gemini, settings
):
    set_sync_window(15, settings)
    fake_gemini.delay = 2.0
    survivor = private_service.start_web()
    doomed_port = free_port()
    doomed = private_service.start_web_process(doomed_port, {})
    private_service.start_worker()
    photos = [unique_photo() for _ in range(5)]
    attempts: list[Attempt] = []
    booths = [
        threading.Thread(target=lambda n=n: attempts.append(post(doomed_port, gemini_booths[n], photos[n])))
        for n in range(5)
    ]
    for thread in booths:
        thread.start()
    assert wait_until(lambda: fake_gemini.calls == 5, timeout=20), "every photo reached the provider"

    doomed.signal(signal.SIGKILL)
    doomed.process.wait(timeout=10)
    for thread in booths:
        thread.join(timeout=20)
    assert [attempt.status for attempt in attempts] == [None] * 5, "the waiting booths lost their connection"

    assert wait_until(lambda: live_jobs() == 0, timeout=20)
    jobs = list(Job.objects.all())
    assert sorted(upload_size(job) for job in jobs) == sorted(len(photo) for photo in photos)
    assert {job.state for job in jobs} == {"succeeded"}, "the worker finished every job of the dead process"
    for job in jobs:
        download = httpx.get(f"{private_service.base_url}/public/results/{job.id}", timeout=10)
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "image/png" and download.content.startswith(b"\x89PNG")
    assert no_files_without_a_row(private_service.media_root), files_without_a_row(private_service.media_root)
    assert list((private_service.media_root / "inputs").glob("*")) == [], "no input photo left behind"

    # The booth that saw its connection die sends the same photo again, to the web process still up.
    retry = post(private_service.port, gemini_booths[0], photos[0])
    assert retry.status == 200, retry.body[:300]
    assert retry.job_id not in {str(job.id) for job in jobs}, "a fresh job, answered afresh"
    assert survivor.process.poll() is None


# --- Worker crash loops ----------------------------------------------------------------------------------


def test_workers_killed_every_two_seconds_under_load_end_every_job_exactly_once(
    private_service, gemini_booths, fake_gemini, settings
):
    set_sync_window(30, settings)
    fake_gemini.delay = 1.0
    private_service.start_web()
    for _ in range(3):
        private_service.start_worker()
    kills = 6
    attempts: list[Attempt] = []
    killed: list[ServiceProcess] = []
    load_over = threading.Event()

    def booth(slot_id: str) -> None:
        while not load_over.is_set():
            attempts.append(post(private_service.port, slot_id, unique_photo()))
            time.sleep(random.uniform(0.1, 0.5))

    def kill_a_worker_every_two_seconds() -> None:
        # The booths post for as long as the kills go on (about 12 s), however fast the machine is.
        while len(killed) < kills:
            time.sleep(2.0)
            victim = next(worker for worker in private_service.workers if worker.process.poll() is None)
            victim.signal(signal.SIGKILL)
            victim.process.wait(timeout=10)
            killed.append(victim)
            private_service.start_worker(wait_ready=False)
        load_over.set()

    threads = [threading.Thread(target=booth, args=(slot_id,)) for slot_id in gemini_booths]
    killer = threading.Thread(target=kill_a_worker_every_two_seconds)
    for thread in [*threads, killer]:
        thread.start()
    killer.join(timeout=60)
    load_over.set()
    for thread in threads:
        thread.join(timeout=60)
    assert wait_until(lambda: live_jobs() == 0, timeout=40), "no job stuck live"

    assert len(killed) == kills, "the workers really were killed over and over"
    assert len(attempts) >= 2 * BOOTHS
    assert Counter(attempt.status for attempt in attempts) == {200: len(attempts)}
    jobs = list(Job.objects.all())
    assert len(jobs) == len(attempts) and {job.state for job in jobs} == {"succeeded"}
    finished = (
        ProcessingLogEntry.objects.filter(event="job_finished").values("job_id").annotate(n=Count("id"))
    )
    assert {row["job_id"]: row["n"] for row in finished} == {job.id: 1 for job in jobs}, "each ended once"

    # Provider calls: one per job, plus one for each re-claim whose earlier claim had reached the provider
    # before its worker was killed. Every re-claim is logged by the worker that makes it.
    calls = provider_calls_by_photo_size(fake_gemini)
    assert sum(calls.values()) == fake_gemini.calls, "every call was for one of these jobs"
    logged = "\n".join(worker.output() for worker in private_service.workers)  # the killed ones too
    for job in jobs:
        job_calls = calls[upload_size(job)]
        logged_reclaims = logged.count(f"job {job.id}: claim ")
        assert 1 <= job_calls <= 1 + logged_reclaims, (job.id, job_calls, logged_reclaims)
        assert logged_reclaims == job.claim_count - 1
    retries = sum(job.claim_count - 1 for job in jobs)
    assert len(jobs) <= fake_gemini.calls <= len(jobs) + retries, (fake_gemini.calls, len(jobs), retries)

    # Killed workers leave files they had not recorded yet (a thumbnail made while the provider worked, a
    # result not finalized): cleanup removes them once no live job can still record them.
    private_service.stop_workers()
    cleanup_run(orphan_min_age=timedelta(0))
    assert files_without_a_row(private_service.media_root) == []
    assert list((private_service.media_root / "inputs").glob("*")) == []


# --- Graceful stop -----------------------------------------------------------------------------------------


def test_sigterm_to_a_web_process_and_a_worker_under_load_loses_no_request_and_no_job(
    private_service, gemini_booths, fake_gemini, settings
):
    set_sync_window(15, settings)
    fake_gemini.delay = 1.5
    stopping_web = private_service.start_web()
    other_port = free_port()
    private_service.start_web_process(other_port, {})
    # Leases of 5 s, not the tests' 1.5 s: on a busy machine a renewal may come late, and a re-claim here
    # must mean an abandoned job (the drain failed), not a slow heartbeat.
    stopping_worker = private_service.start_worker(env={"WORKER_LEASE_SECONDS": "5"})
    private_service.start_worker(env={"WORKER_LEASE_SECONDS": "5"})
    attempts: list[Attempt] = []
    sent_to_stopping_web: list[Attempt] = []
    stop = threading.Event()

    def booth(n: int) -> None:
        # Booths behind a proxy: half of them on the web process that will be stopped until it refuses
        # connections, then on the other one.
        port = private_service.port if n % 2 == 0 else other_port
        while not stop.is_set():
            attempt = post(port, gemini_booths[n], unique_photo())
            attempts.append(attempt)
            if port == private_service.port:
                sent_to_stopping_web.append(attempt)
                if attempt.error:
                    port = other_port
            stop.wait(random.uniform(0.2, 0.8))

    threads = [threading.Thread(target=booth, args=(n,)) for n in range(BOOTHS)]
    for thread in threads:
        thread.start()
    time.sleep(3.0)
    assert live_jobs() > 0, "the signals arrive with work in flight"
    stopping_web.signal(signal.SIGTERM)
    stopping_worker.signal(signal.SIGTERM)
    assert stopping_worker.process.wait(timeout=30) == 0
    # uvicorn re-raises the signal once its graceful shutdown is over: the exit status says SIGTERM.
    assert stopping_web.process.wait(timeout=30) == -signal.SIGTERM
    assert "Finished server process" in stopping_web.output()
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert wait_until(lambda: live_jobs() == 0, timeout=20), "no job stuck live"

    assert "finishing in-flight jobs" in stopping_worker.output()
    answered = [attempt for attempt in attempts if attempt.status is not None]
    assert {attempt.status for attempt in answered} <= {200, 503, 504}
    assert any(attempt.status == 200 for attempt in sent_to_stopping_web)
    jobs = {upload_size(job): job for job in Job.objects.all()}
    for attempt in attempts:
        job = jobs.get(attempt.photo_size)
        if attempt.status is None:
            # Refused before the request was read (the stopped process no longer listens): no job.
            assert job is None, f"a job was created for a request that got no answer ({attempt.error})"
        elif attempt.status == 200:
            assert job is not None and job.state == "succeeded" and str(job.id) == attempt.job_id
    assert {job.state for job in jobs.values()} <= {"succeeded", "timeout"}
    assert {job.claim_count for job in jobs.values()} == {1}, (
        "no job had to be re-claimed: the drain finished it"
    )
    assert no_files_without_a_row(private_service.media_root), files_without_a_row(private_service.media_root)
