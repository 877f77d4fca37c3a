"""Late results (issue 12): a provider slower than the booth's window still gives the guest and the studio
the image. The booth gets its 504 with the job id in time; the call runs on within the grace; the image
is then downloadable at /public/results/<job_id> and shows in the slot's gallery marked late; the job
stays a timeout for the statistics; the call counts against its provider's cap until it ends."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import INGEST_PASSWORD, TEST_SYNC_SECONDS, wait_until
from jobs.late_results import open_calls_release_stale
from jobs.models import Job
from jobs.services import jobs_claim
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from jobs.tests.queue import make_pending_job, set_provider_caps
from slots.models import Slot
from slots.services import StudioSettingsChange, studio_settings_update
from stats.models import IngestCounter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gemini_slot(studio):
    Slot.objects.filter(id="slot-001").update(
        provider="gemini", operation="image_edit", settings={"prompt": "make it art"}, is_active=True
    )
    return "slot-001"


def post(service, slot_id="slot-001"):
    photo = make_jpeg(160, 120)
    return booth_post(
        service.port, f"/ingest/{slot_id}", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )


def test_a_provider_slower_than_the_window_gives_504_then_the_late_image_downloadable_and_in_the_gallery(
    service, worker, gemini_slot, fake_gemini, admin_client
):
    fake_gemini.delay = TEST_SYNC_SECONDS + 2.0
    response = post(service)
    assert response.status == 504
    assert response.elapsed < TEST_SYNC_SECONDS + 1.5, "the booth is answered at its deadline"
    job_id = response.json()["job_id"]
    job = Job.objects.get(id=job_id)
    assert job.state == "timeout" and job.late_result_at is None
    # Marked by the worker at the deadline, the moment the waiter answers the booth.
    marked = wait_until(lambda: Job.objects.get(id=job_id).open_call_provider == "gemini", 3)
    assert marked, "the call running on holds its place under the cap"

    not_yet = httpx.get(f"{service.base_url}/public/results/{job_id}")
    assert not_yet.status_code == 404
    assert not_yet.json()["failure_reason"] == "not_found"
    assert "not ready yet" in not_yet.json()["message"]

    assert wait_until(lambda: Job.objects.get(id=job_id).late_result_at is not None, 15.0)
    job = Job.objects.get(id=job_id)
    assert job.state == "timeout", "still a timeout for the booth and the statistics"
    assert job.open_call_provider == "", "the cap place is given back when the call ends"
    assert job.share_token and job.answered_by == "slot-001"
    assert [attempt["outcome"] for attempt in job.attempts] == ["late"]
    assert fake_gemini.calls == 1
    late = httpx.get(f"{service.base_url}/public/results/{job_id}")
    assert late.status_code == 200
    assert late.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert httpx.get(f"{service.base_url}/s/{job.share_token}").status_code == 200
    outcomes = IngestCounter.objects.filter(slot_id="slot-001").values_list("outcome", flat=True)
    assert list(outcomes) == ["timeout"]

    page = admin_client.get(reverse("admin:slots_slot_change", args=["slot-001"]))
    html = page.content.decode()
    card = html[html.index(f'data-job-id="{job_id}"') - 200 :]
    assert "result-card--late" in card[:400]
    assert "поздний" in card[:2000]


def test_with_late_results_off_the_answer_after_the_window_is_dropped(
    service, worker, gemini_slot, fake_gemini
):
    studio_settings_update(change=StudioSettingsChange(keep_late_results=False))
    fake_gemini.delay = TEST_SYNC_SECONDS + 1.0
    response = post(service)
    assert response.status == 504
    job_id = response.json()["job_id"]
    time.sleep(2.5)
    job = Job.objects.get(id=job_id)
    assert (job.state, job.result_path, job.late_result_at, job.open_call_provider) == (
        "timeout",
        "",
        None,
        "",
    )
    gone = httpx.get(f"{service.base_url}/public/results/{job_id}")
    assert gone.status_code == 404
    assert "not ready yet" not in gone.json()["message"]


def test_a_late_call_still_open_counts_against_its_providers_cap(studio, gemini_slot, media_root):
    set_provider_caps({"gemini": 1})
    late = make_pending_job().id
    Job.objects.filter(id=late).update(
        state="timeout",
        finalized_at=timezone.now(),
        open_call_provider="gemini",
        late_result_grace_seconds=120,
    )
    waiting = make_pending_job().id
    assert jobs_claim(worker="w", limit=5, lease=timedelta(seconds=5)) == [], "the only place is held"
    Job.objects.filter(id=late).update(open_call_provider="")
    assert [job.id for job in jobs_claim(worker="w", limit=5, lease=timedelta(seconds=5))] == [waiting]


def test_a_dead_workers_open_call_is_released_after_its_grace(studio, gemini_slot, media_root):
    stale = make_pending_job().id
    Job.objects.filter(id=stale).update(
        state="timeout",
        open_call_provider="gemini",
        late_result_grace_seconds=10,
        created_at=timezone.now() - timedelta(minutes=5),
        expires_at=timezone.now() - timedelta(minutes=4),
    )
    running = make_pending_job().id
    Job.objects.filter(id=running).update(
        state="timeout", open_call_provider="gemini", late_result_grace_seconds=120
    )
    assert open_calls_release_stale() == 1
    assert Job.objects.get(id=stale).open_call_provider == ""
    assert Job.objects.get(id=running).open_call_provider == "gemini"


def test_a_call_that_never_answers_is_cut_at_the_end_of_the_grace_and_gives_its_place_back(
    service, worker, gemini_slot, fake_gemini
):
    studio_settings_update(change=StudioSettingsChange(late_result_grace_seconds=2))
    fake_gemini.default_mode = "hang"
    response = post(service)
    assert response.status == 504
    job_id = response.json()["job_id"]
    assert wait_until(lambda: Job.objects.get(id=job_id).open_call_provider == "gemini", 3)
    assert wait_until(lambda: Job.objects.get(id=job_id).open_call_provider == "", timeout=10)
    job = Job.objects.get(id=job_id)
    assert (job.state, job.result_path, job.late_result_at) == ("timeout", "", None)
    assert [attempt["outcome"] for attempt in job.attempts] == ["timeout"]
    assert wait_until(lambda: fake_gemini.inflight == 0, 5), "the connection to the provider is closed"
