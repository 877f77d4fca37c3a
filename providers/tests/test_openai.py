"""GPT Image end to end: POST /ingest/<slot_id> → worker → fake OpenAI /v1/images/edits."""

from __future__ import annotations

import time

import pytest

from conftest import TEST_SYNC_SECONDS
from jobs.models import Job
from providers.tests.fakes.openai import JPEG_BYTES, WEBP_BYTES
from providers.tests.pipeline import bind_template, configure_slot, post_photo

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = {
    "prompt": "Make it a comic book cover",
    "size": "1024x1536",
    "output_format": "jpeg",
    "quality": "high",
}


@pytest.fixture
def openai_slot(studio):
    return configure_slot("slot-006", "openai", "image_edit", {**SETTINGS, "output_compression": 70})


def test_gpt_image_result_comes_back_to_the_booth(service, worker, openai_slot, fake_openai):
    style = bind_template(openai_slot, "style_reference", "Comic style")
    photo, response = post_photo(service, openai_slot)
    assert response.status == 200, response.body[:300]
    assert response.body == JPEG_BYTES
    assert response.headers["content-type"] == "image/jpeg"

    sent = fake_openai.requests[0]
    assert sent["api_key"] == "sk-test-openai-key"
    assert sent["model"] == "gpt-image-1.5"
    assert sent["fields"]["prompt"] == SETTINGS["prompt"]
    assert sent["fields"]["size"] == "1024x1536"
    assert sent["fields"]["output_format"] == "jpeg"
    assert sent["fields"]["output_compression"] == "70"
    assert sent["fields"]["quality"] == "high"
    assert [image["length"] for image in sent["images"]] == [len(photo), len(style)], (
        "photo first, then templates"
    )
    assert Job.objects.get(id=response.headers["x-job-id"]).state == "succeeded"


def test_webp_output_is_served_with_its_type(service, worker, studio, fake_openai):
    configure_slot("slot-007", "openai", "image_edit", {"prompt": "p", "output_format": "webp"})
    _, response = post_photo(service, "slot-007")
    assert response.status == 200
    assert response.body == WEBP_BYTES
    assert response.headers["content-type"] == "image/webp"


@pytest.mark.parametrize("failure", ["429", "500", "503"])
def test_retryable_failures_are_retried(service, worker, openai_slot, fake_openai, failure):
    fake_openai.set_script([failure])
    _, response = post_photo(service, openai_slot)
    assert response.status == 200, response.body[:300]
    assert fake_openai.calls == 2
    assert Job.objects.get(id=response.headers["x-job-id"]).provider_calls == 2


@pytest.mark.parametrize("failure", ["400", "moderation", "quota"])
def test_permanent_failures_get_502_after_one_call(service, worker, openai_slot, fake_openai, failure):
    fake_openai.default_mode = failure
    _, response = post_photo(service, openai_slot)
    assert response.status == 502, response.body[:300]
    assert fake_openai.calls == 1
    job = Job.objects.get(id=response.json()["job_id"])
    assert (job.state, job.failure_reason) == ("failed", "provider_error")
    assert "OpenAI HTTP" in job.failure_message


def test_slow_gpt_image_is_cut_at_the_window_with_no_further_calls(service, worker, openai_slot, fake_openai):
    fake_openai.delay = TEST_SYNC_SECONDS + 2
    started = time.monotonic()
    _, response = post_photo(service, openai_slot)
    assert response.status == 504
    assert time.monotonic() - started < TEST_SYNC_SECONDS + 1.5
    time.sleep(2.5)
    assert fake_openai.calls == 1
    assert Job.objects.get(id=response.json()["job_id"]).state == "timeout"
