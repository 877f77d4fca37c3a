"""Several machines' worth of processes on one database and one media store (the filesystem, then an S3
bucket): two web processes, three workers.

Every process here runs with the idle poll of the workers and the held requests' re-check set to an
hour, so a booth is answered in time only when the NOTIFYs cross processes: the web process that took
the photo wakes a worker, and the worker that finished the job wakes the web process holding the booth.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from django.db import connection

from conftest import INGEST_PASSWORD, MEDIA_STORES, Service, ServiceProcess, free_port, wait_until
from jobs.models import Job
from jobs.tests.booth import BoothResponse, booth_fields, booth_post, make_jpeg, multipart_body
from media.models import MediaObject
from slots.models import Slot
from slots.services import StudioSettingsChange, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)

SYNC_SECONDS = 20
NOTIFY_ONLY = {"WORKER_POLL_SECONDS": "3600", "INGEST_WAITER_RECHECK_SECONDS": "3600"}
WORKER_CONCURRENCY = 3
SLOTS = ["slot-001", "slot-002", "slot-003"]


@pytest.fixture(params=MEDIA_STORES)
def media_store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """What selects the media store for every process of the farm: the service's MEDIA_ROOT (one
    directory all processes share), or one bucket on a local S3 server (moto). The tests only go through
    the service's URLs and the database, so they hold for either store."""
    if request.param == "s3":
        return dict(request.getfixturevalue("s3_environment"))
    return {}


@dataclass
class Farm:
    web: list[ServiceProcess]
    web_ports: list[int]
    workers: list[ServiceProcess]

    def post(self, web_index: int, slot_id: str = "slot-001") -> BoothResponse:
        photo = make_jpeg(160, 120)
        body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
        return booth_post(self.web_ports[web_index], f"/ingest/{slot_id}", body)


@pytest.fixture
def farm(service: Service, studio: Any, settings: Any, media_store_env: dict[str, str]) -> Iterator[Farm]:
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=SYNC_SECONDS))
    Slot.objects.filter(id__in=SLOTS).update(
        provider="gemini", operation="image_edit", settings={"prompt": "make it art"}, is_active=True
    )
    env = {**media_store_env, **NOTIFY_ONLY}
    ports = [free_port(), free_port()]
    web: list[ServiceProcess] = []
    try:
        for number, port in enumerate(ports):
            web.append(
                service.start_web_process(port, {**env, "DATABASE_APPLICATION_NAME": f"farm-web-{number}"})
            )
        worker_env = {**env, "DATABASE_APPLICATION_NAME": "farm-worker"}
        workers = [
            service.start_worker("--concurrency", str(WORKER_CONCURRENCY), env=worker_env) for _ in range(3)
        ]
        # A worker whose LISTEN is not up yet claims once when it comes up: wait, so only NOTIFYs wake them.
        assert wait_until(lambda: listening("farm-worker-listen") == len(workers), timeout=20)
        yield Farm(web=web, web_ports=ports, workers=workers)
    finally:
        service.stop_workers()
        for process in web:
            process.stop()


def listening(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query LIKE 'LISTEN %%'",
            [application_name],
        )
        return int(cursor.fetchone()[0])


def claimed_by(worker: ServiceProcess) -> dict[str, Any]:
    """A filter for the jobs this worker process claimed (its name is host:pid:random)."""
    return {"claimed_by__contains": f":{worker.pid}:"}


def test_two_web_processes_and_three_workers_process_every_job_exactly_once(farm, fake_gemini):
    fake_gemini.delay = 0.2
    jobs = 30
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        responses = list(pool.map(lambda n: farm.post(n % 2, SLOTS[n % 3]), range(jobs)))

    assert [response.status for response in responses] == [200] * jobs
    assert fake_gemini.calls == jobs
    assert Job.objects.filter(state="succeeded").count() == jobs
    assert set(Job.objects.values_list("claim_count", flat=True)) == {1}
    for worker in farm.workers:
        assert Job.objects.filter(**claimed_by(worker)).exists(), f"{worker.name} took no job"
    # One media store: each result is downloadable from the web process that did not take the photo.
    for number, response in enumerate(responses):
        other_port = farm.web_ports[(number + 1) % 2]
        download = httpx.get(
            f"http://127.0.0.1:{other_port}/public/results/{response.headers['x-job-id']}", timeout=10
        )
        assert download.status_code == 200
        assert download.content == response.body


def test_a_booth_held_by_one_web_process_is_woken_by_a_worker_in_another_process(farm, fake_gemini):
    fake_gemini.delay = 0.0
    # A web process starts listening with its first held request; one that is not listening yet looks
    # at the row when it connects. After this first photo, only the NOTIFY can wake the second.
    assert farm.post(0).status == 200
    assert wait_until(lambda: listening("farm-web-0-listen") == 1, timeout=20)

    response = farm.post(0)

    assert response.status == 200, response.body[:300]
    # Without the NOTIFYs the job would wait for an hour-long poll and the booth for the end of its
    # window (20 s); half of it is a generous bound on a loaded machine for what takes well under 1 s.
    assert response.elapsed < SYNC_SECONDS / 2
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert job.state == "succeeded"
    assert any(Job.objects.filter(id=job.id, **claimed_by(worker)).exists() for worker in farm.workers)


def test_a_killed_workers_jobs_are_finished_by_the_other_workers(farm, fake_gemini):
    fake_gemini.delay = 2.0
    jobs = len(farm.workers) * WORKER_CONCURRENCY  # every worker full: each holds three of them
    responses: list[BoothResponse] = []

    def post(number: int) -> None:
        responses.append(farm.post(number % 2, SLOTS[number % 3]))

    threads = [threading.Thread(target=post, args=(number,)) for number in range(jobs)]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: fake_gemini.calls == jobs, timeout=20), "every job reached the provider once"
    doomed = farm.workers[0]
    doomed_jobs = set(
        Job.objects.filter(state="processing", **claimed_by(doomed)).values_list("id", flat=True)
    )
    assert len(doomed_jobs) == WORKER_CONCURRENCY
    doomed.signal(signal.SIGKILL)
    doomed.process.wait(timeout=10)

    for thread in threads:
        thread.join(timeout=60)
    assert sorted(response.status for response in responses) == [200] * jobs
    assert Job.objects.filter(state="succeeded").count() == jobs
    for job in Job.objects.filter(id__in=doomed_jobs):
        assert job.claim_count == 2, "re-claimed once its lease lapsed"
        assert f":{doomed.pid}:" not in job.claimed_by
    assert set(Job.objects.exclude(id__in=doomed_jobs).values_list("claim_count", flat=True)) == {1}
    # The killed worker's calls were lost with it; each of its jobs was called once more, no other job.
    assert fake_gemini.calls == jobs + len(doomed_jobs)
    # No input left behind in the media store, the killed worker's jobs' included (the worker that
    # finished a job releases its input right after the staff preview).
    assert wait_until(
        lambda: not MediaObject.objects.filter(kind="input", deleted_at__isnull=True).exists(), timeout=30
    )
