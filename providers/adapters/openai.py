"""OpenAI GPT Image over the real ``/v1/images/edits`` wire format.

Multipart: ``model``, ``prompt``, the photo then bound templates as ``image[]`` (at most 16),
``size``, ``output_format``, ``output_compression`` (jpeg/webp only), ``quality``. The answer carries
the image as ``data[0].b64_json``. 429 ``rate_limit_exceeded`` and 5xx are retried within the deadline;
429 ``insufficient_quota``, 400 (including ``moderation_blocked``) and 401/403/404 are permanent.
Typical latency 15–40 s: every attempt gets the time left as its timeout.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

import httpx
from django.conf import settings as django_settings
from django.utils.translation import gettext as _

from media.images import EXTENSIONS
from providers.base import (
    Provider,
    ProviderError,
    ProviderImage,
    ProviderRequest,
    ProviderResult,
    with_retries,
)
from providers.bodies import BodyPart, FilePart, StreamedBody
from providers.responses import send_bounded

DEFAULT_MODEL = "gpt-image-1.5"
MAX_IMAGES = 16
OUTPUT_MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
PERMANENT_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "moderation_blocked"})


class OpenAIProvider(Provider):
    kind = "openai"
    default_operation = "image_edit"

    def extra_problems(
        self, operation: str, settings: dict[str, Any], template_roles: list[str]
    ) -> dict[str, str]:
        if "output_compression" in settings and settings.get("output_format", "jpeg") == "png":
            return {"output_compression": _("Only with the output format jpeg or webp.")}
        if 1 + len(template_roles) > MAX_IMAGES:
            return {
                "templates": _("At most %(templates)s templates: GPT Image takes %(images)s images in all.")
                % {"templates": MAX_IMAGES - 1, "images": MAX_IMAGES}
            }
        return {}

    def build_fields(self, request: ProviderRequest) -> dict[str, str]:
        settings = request.settings
        output_format = settings.get("output_format", "jpeg")
        fields = {
            "model": settings.get("model", DEFAULT_MODEL),
            "prompt": settings["prompt"],
            "size": settings.get("size", "auto"),
            "output_format": output_format,
            "quality": settings.get("quality", "auto"),
        }
        if "output_compression" in settings and output_format != "png":
            fields["output_compression"] = str(settings["output_compression"])
        return fields

    def build_body(self, request: ProviderRequest, fields: dict[str, str], boundary: str) -> StreamedBody:
        """``multipart/form-data``: the text fields, then the photo and templates as ``image[]`` files
        streamed from the media store."""
        parts: list[BodyPart] = []
        for name, value in fields.items():
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            parts.append(head.encode() + value.encode() + b"\r\n")
        images = [request.photo, *(template.image for template in request.templates)][:MAX_IMAGES]
        for index, image in enumerate(images):
            filename = f"image-{index}.{EXTENSIONS.get(image.mime_type, 'png')}"
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image[]"; filename="{filename}"\r\n'
                f"Content-Type: {image.mime_type}\r\n\r\n"
            )
            parts += [head.encode(), FilePart(image), b"\r\n"]
        parts.append(f"--{boundary}--\r\n".encode())
        return StreamedBody(parts)

    async def process(self, request: ProviderRequest, client: httpx.AsyncClient) -> ProviderResult:
        if not request.api_key:
            raise ProviderError("no OpenAI API key is configured", retryable=False)
        url = f"{django_settings.OPENAI_API_BASE}/v1/images/edits"
        fields = self.build_fields(request)
        boundary = secrets.token_hex(16)
        body = self.build_body(request, fields, boundary)
        headers = {
            "Authorization": f"Bearer {request.api_key}",
            "content-type": f"multipart/form-data; boundary={boundary}",
            "content-length": str(body.content_length),
        }
        fallback_mime = OUTPUT_MIME_TYPES[fields["output_format"]]

        async def attempt(timeout: float) -> ProviderImage:
            response = await send_bounded(
                client,
                "POST",
                url,
                provider="OpenAI",
                content=body.chunks(),
                headers=headers,
                timeout=timeout,
            )
            return parse_response(response, fallback_mime)

        image = await with_retries(request, attempt, **self.retry_options(request.settings))
        return ProviderResult(image=image, attempts=request.attempts)


def parse_response(response: httpx.Response, fallback_mime: str) -> ProviderImage:
    if response.status_code != 200:
        code, message = _error_detail(response)
        status = response.status_code
        retryable = status in RETRYABLE_STATUS and code not in PERMANENT_CODES
        label = f" {code}" if code else ""
        raise ProviderError(
            f"OpenAI HTTP {status}{label}: {message}", retryable=retryable, status_code=status
        )
    try:
        payload = response.json()
        encoded = payload["data"][0]["b64_json"]
        data = base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as error:
        raise ProviderError(
            "OpenAI answered without a decodable image", retryable=True, status_code=200
        ) from error
    if not data:
        raise ProviderError("OpenAI answered with an empty image", retryable=True, status_code=200)
    mime_type = OUTPUT_MIME_TYPES.get(str(payload.get("output_format", "")), fallback_mime)
    return ProviderImage(data=data, mime_type=mime_type)


def _error_detail(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return "", response.reason_phrase
    code = str(error.get("code") or error.get("type") or "")
    return code, str(error.get("message", ""))[:200]
