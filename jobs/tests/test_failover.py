"""Failover inside the window (issue 12): when a slot's provider fails and time is left, the same photo
goes once through its fallback slot's provider and settings (an inactive slot is fine); the job records
both attempts and which one answered. With no time left there is no fallback call."""

from __future__ import annotations

import pytest

from conftest import INGEST_PASSWORD, TEST_SYNC_SECONDS, wait_until
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from jobs.tests.test_test_run_browser import grayscale
from slots.models import Slot
from slots.services import StudioSettingsChange, slot_update, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slot_with_fallback(studio):
    fallback = slot_update(
        slot=Slot.objects.get(id="slot-009"),
        fields={"provider": "local", "operation": "grayscale", "settings": {}, "is_active": False},
    )
    return slot_update(
        slot=Slot.objects.get(id="slot-001"),
        fields={
            "provider": "gemini",
            "operation": "image_edit",
            "settings": {"prompt": "make it art"},
            "is_active": True,
            "fallback_slot": fallback,
        },
    )


def post(service, slot_id="slot-001"):
    photo = make_jpeg(320, 240)
    return booth_post(
        service.port, f"/ingest/{slot_id}", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )


def test_gemini_failing_with_400_is_answered_by_the_fallback_slots_local_provider_in_time(
    service, worker, slot_with_fallback, fake_gemini
):
    fake_gemini.default_mode = "400"
    response = post(service)
    assert response.status == 200, response.body[:300]
    assert response.elapsed < TEST_SYNC_SECONDS
    assert grayscale(response.body), "the fallback slot's operation made the image"
    assert fake_gemini.calls == 1
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert (job.state, job.answered_by, job.provider) == ("succeeded", "slot-009", "gemini")
    first, second = job.attempts
    assert (first["slot_id"], first["provider"], first["outcome"], first["failure_reason"]) == (
        "slot-001", "gemini", "failed", "provider_error"
    )  # fmt: skip
    assert (second["slot_id"], second["provider"], second["outcome"], second["fallback"]) == (
        "slot-009", "local", "succeeded", True
    )  # fmt: skip
    assert job.open_call_provider == ""


def test_gemini_answering_503_until_it_cannot_finish_leaves_the_fallback_time_to_answer(
    service, worker, slot_with_fallback, fake_gemini
):
    fake_gemini.default_mode = "503"
    response = post(service)
    assert response.status == 200, response.body[:300]
    job = Job.objects.get(id=response.headers["x-job-id"])
    first, second = job.attempts
    assert first["outcome"] == "timeout" and first["provider_calls"] >= 2, "retried, then gave up early"
    assert second["outcome"] == "succeeded" and job.answered_by == "slot-009"
    assert job.provider_calls == first["provider_calls"] + 1


def test_with_no_time_left_the_booth_gets_504_without_a_fallback_call(
    service, worker, slot_with_fallback, fake_gemini
):
    studio_settings_update(change=StudioSettingsChange(keep_late_results=False))
    fake_gemini.default_mode = "hang"
    response = post(service)
    assert response.status == 504
    job = Job.objects.get(id=response.json()["job_id"])
    assert job.state == "timeout"
    # The worker records the attempt once the deadline has passed, just after the waiter's timeout.
    assert wait_until(lambda: Job.objects.get(id=job.id).attempts != [], 10.0)
    job.refresh_from_db()
    assert [(attempt["slot_id"], attempt["outcome"]) for attempt in job.attempts] == [("slot-001", "timeout")]
    assert job.answered_by == ""
    assert fake_gemini.calls == 1


def test_a_fallback_slots_own_fallback_is_never_followed(service, worker, slot_with_fallback, fake_gemini):
    slot_update(
        slot=Slot.objects.get(id="slot-009"),
        fields={"provider": "gemini", "operation": "image_edit", "settings": {"prompt": "p"}},
    )
    slot_update(
        slot=Slot.objects.get(id="slot-009"), fields={"fallback_slot": Slot.objects.get(id="slot-010")}
    )
    fake_gemini.default_mode = "400"
    response = post(service)
    assert response.status == 502
    job = Job.objects.get(id=response.headers.get("x-job-id") or response.json()["job_id"])
    assert [attempt["slot_id"] for attempt in job.attempts] == ["slot-001", "slot-009"]
    assert fake_gemini.calls == 2


def test_a_fallback_slot_edited_into_an_incomplete_configuration_is_skipped_not_an_internal_error(
    service, worker, slot_with_fallback, fake_gemini
):
    # Staff later change the fallback slot (inactive, so nothing stops incomplete settings).
    slot_update(
        slot=Slot.objects.get(id="slot-009"),
        fields={"provider": "gemini", "operation": "image_edit", "settings": {}},
    )
    fake_gemini.default_mode = "400"
    response = post(service)
    assert response.status == 502
    job = Job.objects.get(id=response.json()["job_id"])
    assert [(attempt["slot_id"], attempt["outcome"]) for attempt in job.attempts] == [
        ("slot-001", "failed"),
        ("slot-009", "skipped"),
    ]
    assert job.failure_reason == "provider_error"
    assert fake_gemini.calls == 1
