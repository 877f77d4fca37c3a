"""The guest's share page of a result through the real pipeline: X-Share-Url on the ingest answer, the QR
code of that URL on the returned image (read back by a real decoder), the page in Russian or English by
the browser, 410 once the result's retention has passed (time moved), 404 for tokens that lead nowhere."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import httpx
import pytest
import time_machine
import zxingcpp
from django.test import Client
from django.utils import timezone
from PIL import Image

from conftest import INGEST_PASSWORD
from jobs.models import Job
from jobs.slot_test_runs import SAMPLE_PHOTO
from jobs.tests.booth import booth_fields, booth_post, multipart_body
from providers.tests.pipeline import post_photo as post_photo_to
from slots.models import Slot
from slots.services import slot_update

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = re.compile(r"^/s/([A-Za-z0-9_-]{32})$")


@pytest.fixture
def local_slot(studio):
    def configure(share_qr: str = "bottom-right") -> Slot:
        return slot_update(
            slot=Slot.objects.get(id="slot-001"),
            fields={
                "provider": "local",
                "operation": "sepia",
                "settings": {},
                "is_active": True,
                "share_qr": share_qr,
            },
        )

    return configure


def post_photo(service, slot_id="slot-001"):
    photo = SAMPLE_PHOTO.read_bytes()
    return booth_post(
        service.port, f"/ingest/{slot_id}", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )


def decoded_codes(data: bytes) -> list[str]:
    with Image.open(io.BytesIO(data)) as image:
        return [code.text for code in zxingcpp.read_barcodes(image.convert("RGB"))]


def test_the_booth_gets_the_share_url_and_the_printed_qr_code_leads_to_the_page(service, worker, local_slot):
    local_slot("bottom-right")
    response = post_photo(service)
    assert response.status == 200, response.body[:300]
    share_url = response.headers["x-share-url"]
    assert share_url.startswith(f"{service.base_url}/s/")
    path = share_url.removeprefix(service.base_url)
    match = TOKEN.match(path)
    assert match is not None, path
    token = match.group(1)  # 32 URL-safe characters: 192 random bits
    assert decoded_codes(response.body) == [share_url], "the QR code on the image is the share URL"

    job = Job.objects.get(id=response.headers["x-job-id"])
    assert job.share_token == token
    page = httpx.get(share_url, headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "Ваше фото" in page.text and "Скачать" in page.text and "Доступно до" in page.text
    for forbidden in (str(job.id), job.slot_id, "/admin", "/public/"):
        assert forbidden not in page.text, f"the page leads nowhere else ({forbidden})"
    image = httpx.get(f"{share_url}/image")
    assert image.status_code == 200 and image.content == response.body
    download = httpx.get(f"{share_url}/download")
    assert download.content == response.body
    assert download.headers["content-disposition"].startswith("attachment;")
    assert str(job.id) not in download.headers["content-disposition"]


def test_an_english_browser_gets_the_page_in_english(service, worker, local_slot):
    local_slot("off")
    response = post_photo(service)
    assert response.status == 200
    assert decoded_codes(response.body) == [], "no QR code when the slot's setting is off"
    page = httpx.get(response.headers["x-share-url"], headers={"Accept-Language": "en-US,en;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert "Your photo" in page.text and "Download" in page.text and "Available until" in page.text


def test_the_page_answers_410_once_the_result_retention_has_passed(service, worker, local_slot):
    local_slot("off")
    response = post_photo(service)
    path = response.headers["x-share-url"].removeprefix(service.base_url)
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert job.result_expires_at is not None
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    assert client.get(path).status_code == 200
    with time_machine.travel(job.result_expires_at + timedelta(seconds=1), tick=False):
        gone = client.get(path)
        assert gone.status_code == 410
        assert "Это фото больше недоступно" in gone.content.decode()
        assert client.get(f"{path}/image").status_code == 410
        assert client.get(f"{path}/download").status_code == 410
    with time_machine.travel(job.result_expires_at - timedelta(seconds=1), tick=False):
        assert client.get(path).status_code == 200


def test_a_token_that_leads_nowhere_gets_404_and_the_failed_job_has_no_token(studio):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    missing = client.get("/s/" + "A" * 32)
    assert missing.status_code == 404
    assert "Photo not found" in missing.content.decode()
    assert client.get("/s/" + "A" * 32 + "/image").status_code == 404
    assert client.get("/s/" + "x" * 500).status_code == 404
    assert client.get("/s/%00%27%3Cscript%3E" + "A" * 30).status_code == 404, "no 500 on hostile text"
    for nowhere in ("/s", "/s/", "/s/a/b/c", "/s/" + "A" * 32 + "/other"):
        page = client.get(nowhere)
        assert page.status_code == 404 and "Photo not found" in page.content.decode(), nowhere
    assert not Job.objects.exclude(share_token="").filter(finalized_at__lte=timezone.now()).exists()


def photo_sized_png(side: int = 640) -> bytes:
    """A provider's answer big enough to carry a QR code (the fakes' own is 64×64)."""
    image = Image.merge(
        "RGB", [Image.linear_gradient("L").resize((side, side))] * 2 + [Image.new("L", (side, side), 90)]
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("provider", "operation", "provider_settings", "mime_type"),
    [
        ("gemini", "image_edit", {"prompt": "art"}, "image/png"),
        ("openai", "image_edit", {"prompt": "art", "output_format": "jpeg"}, "image/jpeg"),
        ("openai", "image_edit", {"prompt": "art", "output_format": "webp"}, "image/webp"),
        ("turbotext", "image2image", {"prompt": "art", "poll_interval_seconds": 0.2}, "image/png"),
    ],
    ids=["gemini-png", "openai-jpeg", "openai-webp", "turbotext-png"],
)
def test_every_providers_result_carries_the_qr_code_of_its_share_page(
    service,
    worker,
    studio,
    fake_gemini,
    fake_openai,
    fake_turbotext,
    provider,
    operation,
    provider_settings,
    mime_type,
):
    fakes = {"gemini": fake_gemini, "openai": fake_openai, "turbotext": fake_turbotext}
    fakes[provider].result_png = photo_sized_png()
    slot_update(
        slot=Slot.objects.get(id="slot-002"),
        fields={"provider": provider, "operation": operation, "settings": provider_settings, "is_active": True,
                "share_qr": "bottom-left"},
    )  # fmt: skip
    _photo, response = post_photo_to(service, "slot-002")
    assert response.status == 200, response.body[:300]
    assert response.headers["content-type"] == mime_type
    assert decoded_codes(response.body) == [response.headers["x-share-url"]]
