"""Providers that misbehave: each ends as a clean 502 or 504 for the booth, the job final with a clear
failure, nothing stored, the API key never sent to another host, and the worker free for the next job.

The fakes (``providers/tests/fakes``) misbehave on request: hang, trickle, reset mid-body, a 5 MB error
body, a redirect to another host, an image that is truncated or not an image; Turbotext's result URL on
another host, a download that never ends or never starts. One worker serves the whole module with each
provider capped at one call in flight, so the booth's next photo coming back proves that the worker and
the provider's place were freed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import TEST_SYNC_SECONDS, Service, ServiceProcess, wait_until
from jobs.models import Job
from jobs.tests.queue import set_provider_caps
from media.models import MediaObject
from providers.adapters.turbotext import result_host_refused
from providers.base import ProviderError
from providers.responses import ERROR_BODY_MAX_BYTES, send_bounded
from providers.tests.pipeline import configure_slot, post_photo
from slots.services import StudioSettingsChange, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)

SLOTS = {"gemini": "slot-004", "openai": "slot-005", "turbotext": "slot-006"}
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "gemini": ("image_edit", {"prompt": "watercolor"}),
    "openai": ("image_edit", {"prompt": "comic", "output_format": "png"}),
    "turbotext": ("image2image", {"prompt": "superhero", "poll_interval_seconds": 0.3}),
}
# What the booth gets for each misbehaviour: the status, failure reason and words of the job's message.
TIMEOUT = (504, "provider_timeout", "sync window")
NOT_AN_IMAGE = (502, "provider_error", "not a usable image")
HUGE_ERROR = (502, "provider_error", "HTTP 400")
REDIRECT = (502, "provider_error", "redirect")
CASES: list[tuple[str, str, tuple[int, str, str]]] = [
    ("gemini", "hang", TIMEOUT),
    # Bytes keep coming, one every half second: httpx's read timeout never fires; the deadline does.
    ("gemini", "trickle", TIMEOUT),
    # A reset may pass: retried until the deadline.
    ("gemini", "reset", TIMEOUT),
    ("gemini", "truncated_image", NOT_AN_IMAGE),
    ("gemini", "not_image", NOT_AN_IMAGE),
    ("gemini", "garbage_png", NOT_AN_IMAGE),
    ("gemini", "huge_error", HUGE_ERROR),
    ("gemini", "redirect", REDIRECT),
    ("openai", "hang", TIMEOUT),
    ("openai", "reset", TIMEOUT),
    ("openai", "truncated_image", NOT_AN_IMAGE),
    ("openai", "not_image", NOT_AN_IMAGE),
    ("openai", "garbage_png", NOT_AN_IMAGE),
    ("openai", "huge_error", HUGE_ERROR),
    ("openai", "redirect", REDIRECT),
    ("turbotext", "hang", TIMEOUT),
    ("turbotext", "reset", TIMEOUT),
    ("turbotext", "huge_error", HUGE_ERROR),
    ("turbotext", "redirect", REDIRECT),
    ("turbotext", "result_other_host", (502, "provider_error", "not allowed")),
    ("turbotext", "huge_result", (502, "provider_error", "MB")),
    ("turbotext", "hang_download", TIMEOUT),
    ("turbotext", "truncated_image", NOT_AN_IMAGE),
    ("turbotext", "not_image", (502, "provider_error", "not an image")),
    ("turbotext", "garbage_png", NOT_AN_IMAGE),
]
API_KEYS = ("test-gemini-key", "sk-test-openai-key", "test-turbotext-key")


@pytest.fixture(scope="module")
def module_worker(service: Service) -> Iterator[ServiceProcess]:
    """One worker for every case: each case must leave it ready for the next photo."""
    worker = service.start_worker()
    yield worker
    worker.stop()
    service.workers.remove(worker)


@pytest.fixture
def fakes(studio: Any, fake_gemini: Any, fake_openai: Any, fake_turbotext: Any) -> dict[str, Any]:
    set_provider_caps({"gemini": 1, "openai": 1, "turbotext": 1})
    # Calls end with their job here: a late result kept (the studio's default) would let a hanging call
    # run on for its grace and hold the provider's only place (jobs/tests/test_late_results.py).
    studio_settings_update(change=StudioSettingsChange(keep_late_results=False))
    for provider, (operation, settings) in SETTINGS.items():
        configure_slot(SLOTS[provider], provider, operation, settings)
    return {"gemini": fake_gemini, "openai": fake_openai, "turbotext": fake_turbotext}


@pytest.mark.parametrize(("provider", "mode", "expected"), CASES, ids=[f"{p}-{m}" for p, m, _ in CASES])
def test_a_misbehaving_provider_ends_cleanly_and_frees_the_worker(
    service, module_worker, fakes, provider, mode, expected
):
    fake = fakes[provider]
    status, reason, words = expected
    fake.default_mode = mode
    logged_before = len(module_worker.output())
    started = time.monotonic()
    _, response = post_photo(service, SLOTS[provider])
    elapsed = time.monotonic() - started

    assert response.status == status, response.body[:300]
    body = response.json()
    assert body["failure_reason"] == reason
    assert elapsed < TEST_SYNC_SECONDS + 2, "never held past the window"
    job = Job.objects.get(id=body["job_id"])
    assert job.state == ("timeout" if status == 504 else "failed")
    assert words in job.failure_message, job.failure_message
    if status == 502:
        assert words in body["message"]
    assert job.result_path == ""
    assert list((service.media_root / "results").glob(f"{job.id}*")) == []
    # The photo goes with the job (a moment later when its staff thumbnail was still being made).
    inputs_left = MediaObject.objects.filter(job=job, kind="input", deleted_at__isnull=True)
    assert wait_until(lambda: not inputs_left.exists(), 2), "the photo is released"
    # The provider call ended with the job: no connection left open to it.
    assert wait_until(lambda: fake.inflight == 0, 2), "the worker still holds the provider call"
    assert fake.elsewhere == [], "nothing was sent to another host"

    fake.default_mode = "image"
    _, again = post_photo(service, SLOTS[provider])
    assert again.status == 200, "the worker and the provider's only place are free for the next photo"

    logs = module_worker.output()[logged_before:]
    # Provider messages are cut at 200 characters; a 5 MB body is not even read that far.
    assert "x" * 201 not in logs, "a huge error body never reaches the logs"
    for key in API_KEYS:
        assert key not in logs


def test_a_single_reset_is_retried_and_the_photo_comes_back(service, module_worker, fakes):
    fakes["gemini"].set_script(["reset"])
    _, response = post_photo(service, SLOTS["gemini"])
    assert response.status == 200, response.body[:300]
    assert Job.objects.get(id=response.headers["x-job-id"]).provider_calls == 2


def test_the_turbotext_result_is_downloaded_without_credentials(service, module_worker, fakes):
    _, response = post_photo(service, SLOTS["turbotext"])
    assert response.status == 200, response.body[:300]
    downloads = fakes["turbotext"].result_requests
    assert len(downloads) == 1
    assert "authorization" not in downloads[0]


# --- bounded answers, without the service ---------------------------------------------------------


def send_to_fake_gemini(fake_gemini: Any) -> httpx.Response:
    """One generateContent request through ``send_bounded``, as the Gemini adapter sends it."""
    url = f"{fake_gemini.base_url}/v1beta/models/gemini-2.5-flash-image:generateContent"
    body = {"contents": [{"parts": [{"inline_data": {"mime_type": "image/png", "data": "AAAA"}}]}]}

    async def call() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await send_bounded(
                client, "POST", url, provider="Gemini", json=body, headers={"x-goog-api-key": "k"}, timeout=5
            )

    return asyncio.run(call())


def test_only_the_start_of_a_huge_error_body_is_read(fake_gemini):
    fake_gemini.reset()
    fake_gemini.set_script(["huge_error"])
    response = send_to_fake_gemini(fake_gemini)
    assert response.status_code == 400
    assert len(response.content) <= ERROR_BODY_MAX_BYTES
    fake_gemini.reset()


def test_a_success_larger_than_the_limit_is_refused(fake_gemini, settings):
    settings.PROVIDER_MAX_RESPONSE_BYTES = 1000  # the fake's answer is about 5.6 KB
    fake_gemini.reset()
    with pytest.raises(ProviderError) as refused:
        send_to_fake_gemini(fake_gemini)
    assert not refused.value.retryable
    assert "larger than" in refused.value.message
    fake_gemini.reset()


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://www.turbotext.ru/download.php?f=1.png", None),
        ("https://turbotext.ru/result/1.png", None),
        ("https://cdn.turbotext.ru/1.png", None),
        ("https://turbotext.ru.evil.example/1.png", "turbotext.ru.evil.example"),
        ("https://evilturbotext.ru/1.png", "evilturbotext.ru"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("file:///etc/passwd", "a file URL"),
        ("/download/1.png", "a relative URL"),
    ],
)
def test_turbotext_results_come_only_from_its_own_domain_by_default(settings, url, refused):
    settings.TURBOTEXT_API_BASE = "https://www.turbotext.ru"
    settings.TURBOTEXT_RESULT_HOSTS = []
    assert result_host_refused(url) == refused


def test_turbotext_result_hosts_can_be_configured(settings):
    settings.TURBOTEXT_API_BASE = "https://www.turbotext.ru"
    settings.TURBOTEXT_RESULT_HOSTS = ["storage.example.net", ".cdn.example.org"]
    assert result_host_refused("https://storage.example.net/a.png") is None
    assert result_host_refused("https://eu.cdn.example.org/a.png") is None
    assert result_host_refused("https://www.turbotext.ru/a.png") == "www.turbotext.ru"
