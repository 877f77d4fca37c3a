"""Google Gemini image models over the real ``generateContent`` wire format.

Request: the photo, then template images, as ``inline_data`` parts, then the prompt as text;
``generationConfig.responseModalities = ["IMAGE"]``; ``imageConfig.aspectRatio``; ``imageSize`` only for
models that accept it (3 Pro; 2.5 rejects it). ``responseMimeType`` is never sent (400 for images).
Known production quirk: HTTP 200 with ``finishReason: "NO_IMAGE"`` and no parts, within 1–2 s,
intermittently — retried while the deadline allows, like 429/500/503/504. 400/403/404 are permanent.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import httpx
from django.conf import settings as django_settings
from django.utils.translation import gettext as _

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

DEFAULT_MODEL = "gemini-2.5-flash-image"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def model_accepts_image_size(model: str) -> bool:
    return "3-pro" in model


class GeminiProvider(Provider):
    kind = "gemini"
    default_operation = "image_edit"

    def extra_problems(
        self, operation: str, settings: dict[str, Any], template_roles: list[str]
    ) -> dict[str, str]:
        model = settings.get("model", DEFAULT_MODEL)
        if settings.get("image_size") and not model_accepts_image_size(model):
            return {"image_size": _("Only Gemini 3 Pro image models accept an image size.")}
        return {}

    def build_body(self, request: ProviderRequest) -> StreamedBody:
        """The generateContent JSON, with each image's base64 streamed from its file into its ``data``.

        The JSON skeleton carries a placeholder per image (images come before the prompt, so the
        first occurrence of a placeholder is the image's own); the body is the skeleton cut at them.
        """
        images = [request.photo, *(template.image for template in request.templates)]
        parts: list[dict[str, Any]] = [
            {"inline_data": {"mime_type": image.mime_type, "data": f"\x00inline{index}\x00"}}
            for index, image in enumerate(images)
        ]
        parts.append({"text": request.settings["prompt"]})
        image_config: dict[str, str] = {}
        if request.settings.get("aspect_ratio"):
            image_config["aspectRatio"] = request.settings["aspect_ratio"]
        model = request.settings.get("model", DEFAULT_MODEL)
        if request.settings.get("image_size") and model_accepts_image_size(model):
            image_config["imageSize"] = request.settings["image_size"]
        generation_config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
        if image_config:
            generation_config["imageConfig"] = image_config
        rest = json.dumps(
            {"contents": [{"role": "user", "parts": parts}], "generationConfig": generation_config}
        ).encode()
        body: list[BodyPart] = []
        for index, image in enumerate(images):
            before, rest = rest.split(f"\\u0000inline{index}\\u0000".encode(), 1)
            body += [before, FilePart(image, base64=True)]
        body.append(rest)
        return StreamedBody(body)

    async def process(self, request: ProviderRequest, client: httpx.AsyncClient) -> ProviderResult:
        model = request.settings.get("model", DEFAULT_MODEL)
        url = f"{django_settings.GEMINI_API_BASE}/v1beta/models/{model}:generateContent"
        if not request.api_key:
            raise ProviderError("no Gemini API key is configured", retryable=False)
        body = self.build_body(request)
        headers = {
            "x-goog-api-key": request.api_key,
            "content-type": "application/json",
            "content-length": str(body.content_length),
        }

        async def attempt(timeout: float) -> ProviderImage:
            response = await send_bounded(
                client,
                "POST",
                url,
                provider="Gemini",
                content=body.chunks(),
                headers=headers,
                timeout=timeout,
            )
            return parse_response(response)

        image = await with_retries(request, attempt, **self.retry_options(request.settings))
        return ProviderResult(image=image, attempts=request.attempts)


def parse_response(response: httpx.Response) -> ProviderImage:
    """The first image part of a generateContent answer, or a ProviderError saying why not."""
    if response.status_code != 200:
        status = response.status_code
        detail = _error_detail(response)
        raise ProviderError(
            f"Gemini HTTP {status}: {detail}", retryable=status in RETRYABLE_STATUS, status_code=status
        )
    try:
        payload = response.json()
    except ValueError as error:
        raise ProviderError("Gemini answered with invalid JSON", retryable=True, status_code=200) from error
    candidates = payload.get("candidates") or []
    finish_reasons = []
    for candidate in candidates:
        finish_reasons.append(str(candidate.get("finishReason", "")))
        for part in (candidate.get("content") or {}).get("parts") or []:
            inline = part.get("inlineData") or part.get("inline_data")
            if not inline:
                continue
            try:
                data = base64.b64decode(inline.get("data", ""), validate=True)
            except (binascii.Error, ValueError) as error:
                raise ProviderError("Gemini returned undecodable image data", retryable=True) from error
            if data:
                return ProviderImage(
                    data=data, mime_type=inline.get("mimeType") or inline.get("mime_type") or "image/png"
                )
    block_reason = (payload.get("promptFeedback") or {}).get("blockReason")
    if block_reason:
        raise ProviderError(f"Gemini refused the prompt ({block_reason})", retryable=False, status_code=200)
    reasons = ", ".join(reason for reason in finish_reasons if reason) or "no candidates"
    if any(
        reason in {"SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY", "BLOCKLIST"} for reason in finish_reasons
    ):
        raise ProviderError(f"Gemini refused the content ({reasons})", retryable=False, status_code=200)
    # NO_IMAGE (and other empty answers) come and go: worth another attempt while time remains.
    raise ProviderError(f"Gemini returned no image ({reasons})", retryable=True, status_code=200)


def _error_detail(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return f"{error.get('status', '')} {str(error.get('message', ''))[:200]}".strip()
    except ValueError:
        return response.reason_phrase
