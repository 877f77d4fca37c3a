"""The paths outside the admin, through a real uvicorn process: booths get the JSON error body for any
path they mistype, the ingest paths work with a trailing slash, and ``/`` leads to the admin."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from conftest import INGEST_PASSWORD
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot

pytestmark = pytest.mark.django_db(transaction=True)


def assert_json_not_found(status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert body["status"] == "error"
    assert body["failure_reason"] == "not_found"
    assert body["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/public/nothing/here",
        "/public/",
        "/public",
        "/public/results/",
        "/public/results",
        "/public/media/",
        "/public/media",
        "/ingest",
        "/api/ingest/a/b/c",
    ],
)
def test_an_unknown_booth_path_answers_the_json_not_found_body(service: Any, path: str) -> None:
    response = httpx.get(f"{service.base_url}{path}", follow_redirects=False)
    assert_json_not_found(response.status_code, dict(response.headers), response.json())


@pytest.mark.parametrize("path", ["/ingest/", "/ingest/slot-001/extra", "/api/ingest/"])
def test_a_booth_posting_a_photo_to_an_unknown_path_gets_json_not_found_before_uploading(
    service: Any, path: str
) -> None:
    photo = make_jpeg()
    response = booth_post(
        service.port, path, multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    assert not response.got_continue, "the photo is not uploaded to a path that does not exist"
    assert_json_not_found(response.status, response.headers, response.json())


def test_get_on_an_ingest_path_answers_json_method_not_allowed(service: Any) -> None:
    response = httpx.get(f"{service.base_url}/ingest/slot-001/")
    assert response.status_code == 405
    assert response.json()["failure_reason"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/ingest/slot-001/", "/api/ingest/slot-001/"])
def test_ingest_with_a_trailing_slash_answers_the_processed_image(
    service: Any, studio: Any, worker: Any, path: str
) -> None:
    Slot.objects.filter(id="slot-001").update(
        provider="local", operation="grayscale", settings={"output_format": "png"}, is_active=True
    )
    photo = make_jpeg()
    response = booth_post(
        service.port, path, multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    assert response.status == 200, response.body[:300]
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.body)) as image:
        assert image.size == (640, 427)
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert (job.slot_id, job.state) == ("slot-001", "succeeded")


def test_ingest_with_a_trailing_slash_refuses_a_wrong_password_like_without(
    service: Any, studio: Any
) -> None:
    Slot.objects.filter(id="slot-002").update(
        provider="local", operation="grayscale", settings={"output_format": "png"}, is_active=True
    )
    photo = make_jpeg()
    body = multipart_body(booth_fields(photo, "not-the-password"), photo=photo)
    with_slash = booth_post(service.port, "/ingest/slot-002/", body)
    without = booth_post(service.port, "/ingest/slot-002", body)
    assert with_slash.status == without.status == 401
    assert with_slash.json()["failure_reason"] == without.json()["failure_reason"] == "invalid_password"


def test_the_root_redirects_to_the_admin_over_http(service: Any) -> None:
    response = httpx.get(f"{service.base_url}/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/admin/"
