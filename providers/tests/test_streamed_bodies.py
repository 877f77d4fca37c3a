"""Request bodies stream the stored photo chunk by chunk, with an exact Content-Length, in the real wire
format (the fakes decode them like the providers do)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from media import storage
from providers.adapters.gemini import GeminiProvider
from providers.adapters.openai import OpenAIProvider
from providers.base import ProviderRequest, StoredImage, TemplateImage
from providers.bodies import CHUNK_BYTES, StreamedBody
from providers.tests.fakes.openai import parse_multipart

# Several chunks and a length that is not a multiple of 3: base64 padding only at the very end.
PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(3 * CHUNK_BYTES + 1000)
TEMPLATE = b"\x89PNG\r\n\x1a\n" + os.urandom(4097)


@pytest.fixture
def stored(settings, tmp_path: Path) -> tuple[StoredImage, TemplateImage]:
    settings.MEDIA_ROOT = tmp_path
    storage.write_new("inputs/photo.jpg", PHOTO)
    storage.write_new("templates/style.png", TEMPLATE)
    photo = StoredImage(path="inputs/photo.jpg", mime_type="image/jpeg", size_bytes=len(PHOTO))
    template = TemplateImage(
        role="style_reference",
        name="Style",
        image=StoredImage(path="templates/style.png", mime_type="image/png", size_bytes=len(TEMPLATE)),
    )
    return photo, template


def request_for(stored: tuple[StoredImage, TemplateImage], settings: dict[str, object]) -> ProviderRequest:
    photo, template = stored
    return ProviderRequest(
        job_id="job-1",
        operation="image_edit",
        settings=settings,
        photo=photo,
        templates=[template],
        deadline=timezone.now() + timedelta(seconds=20),
        api_key="test-key",
    )


async def collected(body: StreamedBody) -> bytes:
    return b"".join([chunk async for chunk in body.chunks()])


def test_the_gemini_body_is_the_json_with_each_file_base64_encoded_in_place(stored):
    request = request_for(stored, {"prompt": "art", "aspect_ratio": "3:4"})
    body = GeminiProvider().build_body(request)
    sent = asyncio.run(collected(body))
    assert len(sent) == body.content_length
    parts = json.loads(sent)["contents"][0]["parts"]
    assert base64.b64decode(parts[0]["inline_data"]["data"], validate=True) == PHOTO
    assert base64.b64decode(parts[1]["inline_data"]["data"], validate=True) == TEMPLATE
    assert parts[2] == {"text": "art"}
    assert asyncio.run(collected(body)) == sent, "the same body again for a retry"


def test_the_openai_body_is_multipart_with_the_files_as_image_parts(stored):
    request = request_for(stored, {"prompt": "comic", "output_format": "jpeg"})
    provider = OpenAIProvider()
    body = provider.build_body(request, provider.build_fields(request), "boundary123")
    sent = asyncio.run(collected(body))
    assert len(sent) == body.content_length
    parts = parse_multipart(sent, "boundary123")
    assert [(part.name, part.text) for part in parts if part.filename is None][:2] == [
        ("model", "gpt-image-1.5"),
        ("prompt", "comic"),
    ]
    images = [part for part in parts if part.filename is not None]
    assert [(part.name, part.content_type, part.length) for part in images] == [
        ("image[]", "image/jpeg", len(PHOTO)),
        ("image[]", "image/png", len(TEMPLATE)),
    ]
    start = sent.index(PHOTO[:64])
    assert sent[start : start + len(PHOTO)] == PHOTO


def test_gemini_gets_the_streamed_body_with_a_content_length_and_again_on_a_retry(
    stored, settings, fake_gemini
):
    settings.GEMINI_API_BASE = fake_gemini.base_url
    fake_gemini.reset()
    fake_gemini.set_script(["503"])
    request = request_for(stored, {"prompt": "art", "retry_policy": {"base_backoff_seconds": 0.1}})

    async def call() -> None:
        async with httpx.AsyncClient() as client:
            await GeminiProvider().process(request, client)

    asyncio.run(call())
    assert fake_gemini.calls == 2
    length = GeminiProvider().build_body(request).content_length
    assert fake_gemini.body_framings == [("content-length", length)] * 2
    for sent in fake_gemini.requests:
        parts = sent["body"]["contents"][0]["parts"]
        assert [part["inline_data"]["data"] for part in parts[:2]] == [len(PHOTO), len(TEMPLATE)]


def test_openai_gets_the_streamed_multipart_body_with_a_content_length(stored, settings, fake_openai):
    settings.OPENAI_API_BASE = fake_openai.base_url
    fake_openai.reset()
    request = request_for(stored, {"prompt": "comic", "output_format": "jpeg"})

    async def call() -> None:
        async with httpx.AsyncClient() as client:
            await OpenAIProvider().process(request, client)

    asyncio.run(call())
    assert fake_openai.calls == 1
    assert fake_openai.body_framings[0][0] == "content-length"
    images = fake_openai.requests[0]["images"]
    assert [(image["content_type"], image["length"]) for image in images] == [
        ("image/jpeg", len(PHOTO)),
        ("image/png", len(TEMPLATE)),
    ]
