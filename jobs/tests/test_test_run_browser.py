"""A staff member tests a slot in a real browser (Debian's Chromium, Playwright), in Russian, against the
real service: uvicorn + run_worker processes, PostgreSQL, the local provider. The photo goes through the
queue and the worker; the page follows it to its result; the slot's gallery then shows it.

With ``PHOTOCHANGER_SCREENSHOTS=<folder>`` the test also saves the screenshots of Docs/screenshots/
(test run, jobs list, job page; 1366×768 and 390×844)."""

from __future__ import annotations

import io
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from jobs.models import Job
from jobs.slot_test_runs import SAMPLE_PHOTO

pytestmark = pytest.mark.django_db(transaction=True)


def image_loaded(page: Any, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "image => image.complete && image.naturalWidth > 0"))


def grayscale(data: bytes) -> bool:
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((16, 16))
    pixels = [image.getpixel((x, y)) for x in range(16) for y in range(16)]
    return all(abs(r - g) <= 4 and abs(g - b) <= 4 for r, g, b in pixels)  # type: ignore[misc]


def test_staff_run_a_test_photo_through_the_pipeline_and_see_it_in_the_gallery(
    service: Any, worker: Any, staff_browser: Any
) -> None:
    from playwright.sync_api import expect

    from slots.models import Slot
    from slots.services import slot_update

    slot_update(
        slot=Slot.objects.get(id="slot-001"),
        fields={"provider": "local", "operation": "grayscale", "settings": {}, "is_active": True},
    )
    page = staff_browser.page()

    page.goto("/admin/slots/slot/slot-001/test-run/")
    expect(page.locator("h1")).to_have_text("Тестовый запуск: slot-001")
    page.set_input_files("#id_photo", str(SAMPLE_PHOTO))
    page.click("input[type=submit][value='Запустить тест']")
    page.wait_for_url(re.compile(r".*/admin/slots/slot/slot-001/test-run/[0-9a-f-]{36}/$"))
    job_id = page.url.rstrip("/").rsplit("/", 1)[-1]

    # The page refreshes itself until the worker has finished the job.
    outcome = page.locator(".test-run-outcome[data-state='succeeded']")
    expect(outcome).to_be_visible(timeout=30_000)
    expect(outcome.locator(".job-state")).to_have_text("Успешно")
    expect(outcome.locator(".test-run-outcome__time")).to_contain_text("Заняло:")
    page.wait_for_load_state("load")
    assert image_loaded(page, "img.test-run-outcome__result")
    thumbnail = page.request.get(page.get_attribute("img.test-run-outcome__result", "src"))
    assert thumbnail.ok and grayscale(thumbnail.body()), "the result image is the slot's grayscale effect"
    download = page.request.get(page.get_attribute(".test-run-outcome__download", "href"))
    assert download.ok and download.headers["content-type"] == "image/jpeg" and grayscale(download.body())

    job = Job.objects.get(id=job_id)
    assert (job.state, job.is_test, job.provider, job.operation) == ("succeeded", True, "local", "grayscale")
    assert job.input_thumbnail_path and job.result_thumbnail_path, "the worker made both previews"

    # The gallery on the slot's test-run page shows the result, marked as a test run.
    page.goto("/admin/slots/slot/slot-001/test-run/")
    card = page.locator(f".result-card[data-job-id='{job_id}']")
    expect(card).to_be_visible()
    expect(card).to_contain_text(job_id[:8])
    expect(card).to_contain_text("тестовый запуск")
    assert image_loaded(page, f".result-card[data-job-id='{job_id}'] img")
    expect(card.locator("a.result-card__download")).to_have_attribute("href", f"/public/results/{job_id}")

    # The sample photo needs no upload.
    page.click("button[name=use_sample]")
    expect(page.locator(".test-run-outcome[data-state='succeeded']")).to_be_visible(timeout=30_000)
    assert Job.objects.filter(is_test=True, state="succeeded").count() == 2

    folder = os.environ.get("PHOTOCHANGER_SCREENSHOTS")
    if folder:
        take_screenshots(Path(folder), staff_browser, page.url)


def styled(photo: bytes, effect: str) -> bytes:
    """The sample photo with a visible effect, standing in for a provider's result in the screenshots."""
    from PIL import ImageOps

    image = Image.open(io.BytesIO(photo)).convert("RGB")
    if effect == "posterize":
        image = ImageOps.posterize(image, 2)
    else:
        image = ImageOps.colorize(ImageOps.grayscale(image), "#3b2410", "#f3e2c0")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def take_screenshots(folder: Path, staff_browser: Any, status_url: str) -> None:
    """The pages of Docs/screenshots/, at a laptop's and a phone's size, with a few booth jobs listed."""
    from django.utils import timezone

    from jobs.tests.queue import make_finished_job

    photo = SAMPLE_PHOTO.read_bytes()
    now = timezone.now()
    make_finished_job(
        slot_id="slot-003",
        provider="gemini",
        created_at=now - timedelta(minutes=9),
        seconds=7.8,
        photo=photo,
        result=styled(photo, "posterize"),
    )
    make_finished_job(
        slot_id="slot-003",
        state="timeout",
        provider="gemini",
        created_at=now - timedelta(minutes=7),
        seconds=48,
        failure_reason="provider_timeout",
        failure_message="No result within the sync window.",
        photo=photo,
    )
    make_finished_job(
        slot_id="slot-002",
        state="failed",
        provider="openai",
        created_at=now - timedelta(minutes=5),
        seconds=2.1,
        failure_reason="provider_error",
        failure_message="Your request was rejected as a result of our safety system.",
        photo=photo,
    )
    booth_job = make_finished_job(
        slot_id="slot-001",
        provider="local",
        created_at=now - timedelta(minutes=3),
        seconds=0.4,
        request_metadata={
            "time": "1764400000",
            "user_id": "Acer",
            "name": "DESKTOP-K968T3F",
            "model": "Windows",
            "version": "3.30.2",
            "survey": "yes",
            "_upload": {"field": "fileToUpload", "filename": "IMG_0003.JPG", "size_bytes": 201233},
        },
        photo=photo,
        result=styled(photo, "sepia"),
    )
    folder.mkdir(parents=True, exist_ok=True)
    pages = [
        ("test-run", status_url),
        ("test-run-form", "/admin/slots/slot/slot-001/test-run/"),
        ("jobs-list", "/admin/jobs/job/"),
        ("job-page", f"/admin/jobs/job/{booth_job.id}/change/"),
    ]
    for size_name in ("desktop", "phone"):
        page = staff_browser.page(size_name)
        for name, url in pages:
            page.goto(url)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / f"{name}-{size_name}.png"), full_page=True)
        page.context.close()
