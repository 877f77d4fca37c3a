"""Turbotext end to end: create_queue with our temporary public links, polling, result download."""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import TEST_SYNC_SECONDS
from jobs.models import Job
from media.models import MediaObject
from providers.tests.fakes.gemini import PNG_BYTES
from providers.tests.pipeline import bind_template, configure_slot, post_photo
from slots.services import StudioSettingsChange, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def image2image_slot(studio):
    settings = {
        "prompt": "девушка в костюме супермена",
        "strength": 50,
        "seed": 42,
        "poll_interval_seconds": 0.3,
    }
    return configure_slot("slot-008", "turbotext", "image2image", settings)


def create_request(fake):
    return next(request for request in fake.requests if request["do"] == "create_queue")


def test_image2image_fetches_the_link_polls_and_returns_the_result(
    service, worker, image2image_slot, fake_turbotext
):
    fake_turbotext.reconnects = 2
    photo, response = post_photo(service, image2image_slot)
    assert response.status == 200, response.body[:300]
    assert response.body == PNG_BYTES

    created = create_request(fake_turbotext)
    assert created["method"] == "generate_image2image"
    assert created["api_key"] == "test-turbotext-key"
    fields = created["fields"]
    assert fields["content"] == "девушка в костюме супермена"
    assert (fields["strength"], fields["seed"]) == ("50", "42")
    link = fields["url"]
    assert link.startswith(f"{service.base_url}/public/media/")
    assert created["downloads"][link]["status"] == 200, "the provider fetched our temporary link"
    assert created["downloads"][link]["length"] == len(photo)
    assert fake_turbotext.polls >= 3, "reconnect answers were polled through"

    job = Job.objects.get(id=response.headers["x-job-id"])
    assert job.state == "succeeded"
    assert job.provider_job_reference == str(created["queueid"])
    gone = httpx.get(link)
    assert gone.status_code == 410, "the link dies with the job"
    assert gone.json()["failure_reason"] == "gone"
    assert MediaObject.objects.filter(job=job, kind="public_link", deleted_at__isnull=False).count() == 1


@pytest.mark.parametrize("location", ["top", "data"])
def test_result_url_is_read_from_either_place(service, worker, image2image_slot, fake_turbotext, location):
    fake_turbotext.result_url_location = location
    _, response = post_photo(service, image2image_slot)
    assert response.status == 200


def test_mix_images_sends_the_photo_as_target_and_the_style_template_as_url(
    service, worker, studio, fake_turbotext
):
    configure_slot(
        "slot-009", "turbotext", "mix_images", {"prompt": "в стиле дисней", "poll_interval_seconds": 0.3}
    )
    style = bind_template("slot-009", "style_reference", "Disney")
    photo, response = post_photo(service, "slot-009")
    assert response.status == 200, response.body[:300]
    created = create_request(fake_turbotext)
    assert created["method"] == "mix_images"
    downloads = created["downloads"]
    assert downloads[created["fields"]["url_image_target"]]["length"] == len(photo)
    assert downloads[created["fields"]["url"]]["length"] == len(style)


def test_deepfake_puts_the_guest_face_on_the_target_template(service, worker, studio, fake_turbotext):
    configure_slot(
        "slot-010", "turbotext", "deepfake_photo", {"face_restore": True, "poll_interval_seconds": 0.3}
    )
    body = bind_template("slot-010", "target", "Superhero")
    photo, response = post_photo(service, "slot-010")
    assert response.status == 200, response.body[:300]
    created = create_request(fake_turbotext)
    assert created["method"] == "deepfake_photo"
    assert created["fields"]["face_restore"] == "True"
    assert created["downloads"][created["fields"]["url"]]["length"] == len(body)
    assert created["downloads"][created["fields"]["url_image_target"]]["length"] == len(photo)


def test_task_error_gets_502(service, worker, image2image_slot, fake_turbotext):
    fake_turbotext.default_mode = "error"
    _, response = post_photo(service, image2image_slot)
    assert response.status == 502
    assert "face_not_found" in Job.objects.get(id=response.json()["job_id"]).failure_message


@pytest.mark.parametrize("failure", ["503", "limit"])
def test_create_queue_transient_failures_are_retried(
    service, worker, image2image_slot, fake_turbotext, failure
):
    fake_turbotext.set_script([failure])
    _, response = post_photo(service, image2image_slot)
    assert response.status == 200, response.body[:300]
    assert fake_turbotext.calls == 2


def test_with_late_results_off_a_queue_that_never_finishes_ends_in_504_and_polling_stops(
    service, worker, image2image_slot, fake_turbotext
):
    # (With late results kept, the studio's default, polling goes on within the grace for a late result.)
    studio_settings_update(change=StudioSettingsChange(keep_late_results=False))
    fake_turbotext.default_mode = "reconnect_forever"
    started = time.monotonic()
    _, response = post_photo(service, image2image_slot)
    assert response.status == 504
    assert time.monotonic() - started <= TEST_SYNC_SECONDS + 2
    polls = fake_turbotext.polls
    time.sleep(1.5)
    assert fake_turbotext.polls == polls, "no polling after the deadline"
    job = Job.objects.get(id=response.json()["job_id"])
    assert job.state == "timeout"
    assert job.provider_job_reference
