"""A guest opens the share page on a phone (390×844) in a real browser (Debian's Chromium, Playwright),
against the real service: the photo went through the queue and the worker with the QR code stamped on.
Russian and English by the browser's language; the download button hands over the image; after the
result's retention the page says the photo is gone (410).

With ``PHOTOCHANGER_SCREENSHOTS=Docs/screenshots`` the test saves share-page-phone-{ru,en}.png and
share-page-gone-phone-ru.png there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conftest import INGEST_PASSWORD, SCREEN_SIZES
from jobs.models import Job
from jobs.slot_test_runs import SAMPLE_PHOTO
from jobs.tests.booth import booth_fields, booth_post, multipart_body
from jobs.tests.test_test_run_browser import image_loaded
from slots.models import Slot
from slots.services import slot_update

pytestmark = pytest.mark.django_db(transaction=True)

PHONE_WIDTH = SCREEN_SIZES["phone"][0]


def test_a_guest_opens_the_share_page_on_a_phone_downloads_the_photo_and_later_finds_it_gone(
    service: Any, worker: Any, staff_browser: Any
) -> None:
    from playwright.sync_api import expect

    slot_update(
        slot=Slot.objects.get(id="slot-001"),
        fields={
            "provider": "local",
            "operation": "sepia",
            "settings": {},
            "is_active": True,
            "share_qr": "bottom-right",
        },
    )
    photo = SAMPLE_PHOTO.read_bytes()
    response = booth_post(
        service.port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    assert response.status == 200, response.body[:300]
    path = response.headers["x-share-url"].removeprefix(service.base_url)

    for locale, heading, button, until in (
        ("ru-RU", "Ваше фото", "Скачать", "Доступно до"),
        ("en-US", "Your photo", "Download", "Available until"),
    ):
        page = staff_browser.page("phone", locale=locale, log_in=False)
        answer = page.goto(path)
        assert answer is not None and answer.status == 200
        expect(page.locator("h1")).to_have_text(heading)
        assert image_loaded(page, ".photo img")
        download_button = page.locator("a.download")
        expect(download_button).to_have_text(button)
        expect(page.locator(".note").first).to_contain_text(until)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH, "no sideways scrolling"
        box = download_button.bounding_box()
        assert box is not None and box["y"] + box["height"] <= SCREEN_SIZES["phone"][1], (
            "the button is in view"
        )
        with page.expect_download() as download_info:
            download_button.click()
        download = download_info.value
        assert download.suggested_filename.startswith("photo-") and download.suggested_filename.endswith(
            ".jpg"
        )
        with open(download.path(), "rb") as saved:
            assert saved.read() == response.body
        staff_browser.screenshot(page, f"share-page-phone-{locale[:2]}")
        page.context.close()

    # The result's retention ends (cleanup would delete the file next).
    Job.objects.filter(id=response.headers["x-job-id"]).update(
        result_expires_at=timezone.now() - timedelta(seconds=1)
    )
    page = staff_browser.page("phone", locale="ru-RU", log_in=False)
    gone = page.goto(path)
    assert gone is not None and gone.status == 410
    expect(page.locator("h1")).to_have_text("Это фото больше недоступно")
    assert page.locator("img").count() == 0
    staff_browser.screenshot(page, "share-page-gone-phone-ru")
