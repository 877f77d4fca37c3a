"""The queue worker as processes: crash recovery, exactly-once provider calls, graceful drain."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import INGEST_PASSWORD, wait_until
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot
from slots.services import StudioSettingsChange, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def stop_workers_after_each_test(service):
    yield
    service.stop_workers()


@pytest.fixture
def gemini_slots(studio):
    Slot.objects.filter(id__in=["slot-001", "slot-002", "slot-003"]).update(
        provider="gemini", operation="image_edit", settings={"prompt": "make it art"}, is_active=True
    )
    return ["slot-001", "slot-002", "slot-003"]


def post(service, slot_id="slot-001"):
    photo = make_jpeg(160, 120)
    return booth_post(
        service.port, f"/ingest/{slot_id}", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )


def test_worker_killed_mid_job_does_not_lose_the_job(service, gemini_slots, fake_gemini, settings):
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=15))
    fake_gemini.delay = 1.0
    doomed = service.start_worker()
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(response=post(service)))
    thread.start()
    assert wait_until(lambda: Job.objects.filter(state="processing").exists(), 10.0)
    assert wait_until(lambda: fake_gemini.calls == 1, 10.0)
    doomed.signal(signal.SIGKILL)
    doomed.process.wait(timeout=10)

    service.start_worker()
    thread.join(timeout=30)
    response = result["response"]
    assert response.status == 200, response.body[:300]
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert job.state == "succeeded"
    assert job.claim_count == 2, "the job was re-claimed by the second worker after the lease lapsed"
    assert fake_gemini.calls == 2


def test_three_workers_and_sixty_jobs_make_exactly_sixty_provider_calls(
    service, gemini_slots, fake_gemini, settings
):
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=30))
    fake_gemini.delay = 0.2
    for _ in range(3):
        service.start_worker("--concurrency", "8")
    with ThreadPoolExecutor(max_workers=60) as pool:
        responses = list(pool.map(lambda n: post(service, gemini_slots[n % 3]), range(60)))
    assert [response.status for response in responses] == [200] * 60
    assert fake_gemini.calls == 60
    assert Job.objects.filter(state="succeeded").count() == 60
    assert set(Job.objects.values_list("claim_count", flat=True)) == {1}
    assert len(set(Job.objects.values_list("claimed_by", flat=True))) == 3, "all three workers took jobs"


def test_sigterm_drains_in_flight_jobs_then_exits(service, gemini_slots, fake_gemini, settings):
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=15))
    fake_gemini.delay = 2.0
    worker = service.start_worker()
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(response=post(service)))
    thread.start()
    assert wait_until(lambda: fake_gemini.calls == 1, 10.0)
    worker.signal(signal.SIGTERM)
    # While draining it claims nothing new.
    late: dict[str, Any] = {}
    late_thread = threading.Thread(target=lambda: late.update(response=post(service, "slot-002")))
    late_thread.start()
    assert worker.process.wait(timeout=15) == 0
    thread.join(timeout=15)
    assert result["response"].status == 200
    assert "finishing in-flight jobs" in worker.output()
    assert (
        Job.objects.filter(slot_id="slot-002", state="pending").exists()
        or Job.objects.filter(slot_id="slot-002", state="timeout").exists()
    )
    assert fake_gemini.calls == 1
    service.stop_workers()
    service.start_worker()
    late_thread.join(timeout=20)
    assert late["response"].status == 200


def test_second_signal_exits_at_once(service, gemini_slots, fake_gemini, settings):
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=15))
    fake_gemini.default_mode = "hang"
    worker = service.start_worker()
    thread = threading.Thread(target=lambda: post(service))
    thread.start()
    assert wait_until(lambda: fake_gemini.calls == 1, 10.0)
    worker.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert worker.process.poll() is None, "still draining after the first signal"
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    worker.process.wait(timeout=5)
    assert time.monotonic() - started < 3
    job = Job.objects.get()
    assert job.state == "processing", "abandoned, not finalized: its lease will lapse for another worker"
    thread.join(timeout=30)
