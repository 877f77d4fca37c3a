"""The Gemini adapter end to end: POST /ingest/<slot_id> → worker → fake Gemini (real wire format)."""

from __future__ import annotations

import base64
import time

import pytest

from conftest import INGEST_PASSWORD, TEST_SYNC_SECONDS
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from providers.tests.fakes.gemini import PNG_BYTES
from slots.models import Slot
from slots.services import StudioSettingsChange, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "Turn this guest into a watercolor portrait"


@pytest.fixture
def gemini_slot(studio):
    Slot.objects.filter(id="slot-005").update(
        provider="gemini",
        operation="image_edit",
        settings={"prompt": PROMPT, "model": "gemini-2.5-flash-image", "aspect_ratio": "3:4"},
        is_active=True,
    )
    return "slot-005"


def post_photo(service, slot_id="slot-005"):
    photo = make_jpeg()
    return photo, booth_post(
        service.port, f"/ingest/{slot_id}", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )


def test_gemini_image_comes_back_to_the_booth(service, worker, gemini_slot, fake_gemini):
    photo, response = post_photo(service)
    assert response.status == 200, response.body[:300]
    assert response.body == PNG_BYTES
    assert response.headers["content-type"] == "image/png"

    assert fake_gemini.calls == 1
    sent = fake_gemini.requests[0]
    assert sent["model"] == "gemini-2.5-flash-image"
    assert sent["api_key"] == "test-gemini-key"
    parts = sent["body"]["contents"][0]["parts"]
    assert parts[0]["inline_data"] == {"mime_type": "image/jpeg", "data": len(photo)}
    assert parts[-1] == {"text": PROMPT}
    config = sent["body"]["generationConfig"]
    assert config["responseModalities"] == ["IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "3:4"}
    assert "responseMimeType" not in config
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert (job.state, job.provider_calls) == ("succeeded", 1)


def test_bound_templates_follow_the_photo_before_the_prompt(service, worker, gemini_slot, fake_gemini):
    from django.core.files.base import ContentFile

    from jobs.tests.booth import make_png
    from slots.models import SlotTemplateBinding, TemplateMedia
    from slots.services import template_media_save

    style = make_png(32, 32)
    template = TemplateMedia(name="Style")
    template.file.save("style.png", ContentFile(style), save=False)
    template_media_save(template=template)
    SlotTemplateBinding.objects.create(slot_id="slot-005", template=template, role="style_reference")

    _photo, response = post_photo(service)
    assert response.status == 200
    parts = fake_gemini.requests[0]["body"]["contents"][0]["parts"]
    assert [list(part) for part in parts] == [["inline_data"], ["inline_data"], ["text"]]
    assert parts[1]["inline_data"] == {"mime_type": "image/png", "data": len(style)}


@pytest.mark.parametrize("failure", ["no_image", "429", "500", "503"])
def test_retryable_failure_is_retried_within_the_deadline(service, worker, gemini_slot, fake_gemini, failure):
    fake_gemini.set_script([failure, failure])
    _, response = post_photo(service)
    assert response.status == 200, response.body[:300]
    assert fake_gemini.calls == 3
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert (job.state, job.provider_calls) == ("succeeded", 3)


@pytest.mark.parametrize("failure", ["400", "403", "404"])
def test_permanent_failure_gets_502_without_retries(service, worker, gemini_slot, fake_gemini, failure):
    fake_gemini.default_mode = failure
    _, response = post_photo(service)
    assert response.status == 502, response.body[:300]
    body = response.json()
    assert body["failure_reason"] == "provider_error"
    assert fake_gemini.calls == 1
    job = Job.objects.get(id=body["job_id"])
    assert job.state == "failed"
    assert job.failure_reason == "provider_error"
    assert f"HTTP {failure}" in job.failure_message


def test_missing_api_key_fails_permanently_without_calling_gemini(
    service, worker, gemini_slot, fake_gemini, settings
):
    from providers.services import provider_key_set

    provider_key_set(provider="gemini", api_key="")
    _, response = post_photo(service)
    # The worker process may still see GEMINI_API_KEY from the environment; the test env has none.
    assert response.status == 502
    assert fake_gemini.calls == 0


def test_retryable_failures_until_the_deadline_end_in_504(service, worker, gemini_slot, fake_gemini):
    fake_gemini.default_mode = "503"
    started = time.monotonic()
    _, response = post_photo(service)
    assert response.status == 504
    assert time.monotonic() - started <= TEST_SYNC_SECONDS + 2
    assert fake_gemini.calls >= 2
    assert Job.objects.get(id=response.json()["job_id"]).state == "timeout"


def test_with_late_results_off_a_slow_provider_is_cut_at_the_window_and_its_late_answer_ignored(
    service, worker, gemini_slot, fake_gemini
):
    # (With late results kept, the studio's default, the answer is kept: jobs/tests/test_late_results.py.)
    studio_settings_update(change=StudioSettingsChange(keep_late_results=False))
    fake_gemini.delay = TEST_SYNC_SECONDS + 1.5
    started = time.monotonic()
    _, response = post_photo(service)
    assert response.status == 504
    assert time.monotonic() - started < TEST_SYNC_SECONDS + 1.5
    job_id = response.json()["job_id"]
    time.sleep(2.5)  # the fake would have answered by now
    job = Job.objects.get(id=job_id)
    assert job.state == "timeout"
    assert job.result_path == ""
    assert fake_gemini.calls == 1, "no further calls after the deadline"
    assert list((service.media_root / "results").glob(f"{job_id}*")) == []


def test_hanging_provider_gets_504_in_time(service, worker, gemini_slot, fake_gemini):
    fake_gemini.default_mode = "hang"
    started = time.monotonic()
    _, response = post_photo(service)
    assert response.status == 504
    assert time.monotonic() - started <= TEST_SYNC_SECONDS + 2


def test_gemini_response_parser_reads_camel_and_snake_case_images():
    import httpx

    from providers.adapters.gemini import parse_response

    for key, mime in (("inlineData", "mimeType"), ("inline_data", "mime_type")):
        payload = {
            "candidates": [
                {
                    "content": {
                        "parts": [{key: {mime: "image/png", "data": base64.b64encode(PNG_BYTES).decode()}}]
                    }
                }
            ]
        }
        image = parse_response(httpx.Response(200, json=payload))
        assert image.data == PNG_BYTES
        assert image.mime_type == "image/png"


def test_gemini_safety_block_is_permanent():
    import httpx

    from providers.adapters.gemini import parse_response
    from providers.base import ProviderError

    with pytest.raises(ProviderError) as error:
        parse_response(httpx.Response(200, json={"candidates": [{"finishReason": "IMAGE_SAFETY"}]}))
    assert not error.value.retryable


def test_gemini_3_pro_gets_its_image_size(service, worker, studio, fake_gemini):
    Slot.objects.filter(id="slot-013").update(
        provider="gemini",
        operation="image_edit",
        settings={
            "prompt": PROMPT,
            "model": "gemini-3-pro-image-preview",
            "image_size": "2K",
            "aspect_ratio": "4:5",
        },
        is_active=True,
    )
    _, response = post_photo(service, "slot-013")
    assert response.status == 200, response.body[:300]
    sent = fake_gemini.requests[0]
    assert sent["model"] == "gemini-3-pro-image-preview"
    assert sent["body"]["generationConfig"]["imageConfig"] == {"aspectRatio": "4:5", "imageSize": "2K"}
