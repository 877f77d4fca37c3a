"""Turbotext (asynchronous queue) over its real form-encoded wire format.

``POST {base}/api_ai/<method>`` with ``Authorization: Bearer``: ``do=create_queue`` with links to the
photo (and to a template where the operation needs a second image) → ``{"success": true, "queueid": N}``;
then ``do=get_result&queueid=N`` until it stops answering ``{"action": "reconnect"}``; the result image
URL (``uploaded_image``, at the top level or under ``data``) is then downloaded. The links are our
temporary public links (``/public/media/<id>``), valid only while the job lives. The queue id is kept on
the job (``provider_job_reference``).

Operations: ``image2image`` (``generate_image2image``: ``url`` = photo, ``content`` = prompt),
``mix_images`` (``url_image_target`` = photo, ``url`` = bound ``style_reference`` template),
``deepfake_photo`` (``url`` = bound ``target`` template whose face is replaced, ``url_image_target`` =
the guest's photo).

The result is downloaded without credentials, only from an allowed host (``TURBOTEXT_RESULT_HOSTS``,
by default the domain of ``TURBOTEXT_API_BASE``), never through a redirect, within the size limit of
every provider answer (``providers.responses``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from django.conf import settings as django_settings

from media.images import sniff_image_type
from providers.base import (
    MIN_ATTEMPT_SECONDS,
    Provider,
    ProviderDeadlineExceeded,
    ProviderError,
    ProviderImage,
    ProviderRequest,
    ProviderResult,
    TemplateImage,
    with_retries,
)
from providers.responses import send_bounded

METHODS = {
    "image2image": "generate_image2image",
    "mix_images": "mix_images",
    "deepfake_photo": "deepfake_photo",
}
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Errors Turbotext reports with success=false that may pass on their own.
RETRYABLE_ERRORS = frozenset({"LIMIT"})
TEMPLATE_ROLE = {"mix_images": "style_reference", "deepfake_photo": "target"}


class TurbotextProvider(Provider):
    kind = "turbotext"
    default_operation = "image2image"

    async def process(self, request: ProviderRequest, client: httpx.AsyncClient) -> ProviderResult:
        if not request.api_key:
            raise ProviderError("no Turbotext API key is configured", retryable=False)
        if request.hooks is None:
            raise ProviderError(
                "Turbotext needs public links, which this context cannot create", retryable=False
            )
        url = f"{django_settings.TURBOTEXT_API_BASE}/api_ai/{METHODS[request.operation]}"
        headers = {"Authorization": f"Bearer {request.api_key}"}
        form = await self.build_form(request)

        async def create_queue(timeout: float) -> str:
            response = await send_bounded(
                client, "POST", url, provider="Turbotext", data=form, headers=headers, timeout=timeout
            )
            payload = _json(response)
            if payload.get("success") is True and payload.get("queueid") is not None:
                return str(payload["queueid"])
            error = str(payload.get("error") or "no queue id")
            raise ProviderError(f"Turbotext refused the task: {error}", retryable=error in RETRYABLE_ERRORS)

        queue_id = await with_retries(request, create_queue, **self.retry_options(request.settings))
        await request.hooks.record_reference(queue_id)
        result_url = await self._poll(request, client, url, headers, queue_id)
        image = await self._download(request, client, result_url)
        return ProviderResult(image=image, attempts=request.attempts)

    async def build_form(self, request: ProviderRequest) -> dict[str, str]:
        assert request.hooks is not None
        settings = request.settings
        photo = request.photo
        photo_url = await request.hooks.public_link(
            path=photo.path, mime_type=photo.mime_type, size_bytes=photo.size_bytes
        )
        if request.operation == "image2image":
            form = {"do": "create_queue", "url": photo_url, "content": settings["prompt"]}
            for name in ("strength", "seed", "scale", "negative_prompt", "original_language", "user_id"):
                if name in settings:
                    form[name] = str(settings[name])
            return form
        template = _template(request, TEMPLATE_ROLE[request.operation]).image
        template_url = await request.hooks.public_link(
            path=template.path, mime_type=template.mime_type, size_bytes=template.size_bytes
        )
        if request.operation == "mix_images":
            form = {"do": "create_queue", "url_image_target": photo_url, "url": template_url}
            if settings.get("prompt"):
                form["content"] = settings["prompt"]
            return form
        return {
            "do": "create_queue",
            "url": template_url,
            "url_image_target": photo_url,
            "face_restore": "True" if settings.get("face_restore", True) else "False",
        }

    async def _poll(
        self,
        request: ProviderRequest,
        client: httpx.AsyncClient,
        url: str,
        headers: dict[str, str],
        queue_id: str,
    ) -> str:
        interval = float(request.settings.get("poll_interval_seconds", 1.0))
        while True:
            left = request.remaining()
            if left < MIN_ATTEMPT_SECONDS:
                raise ProviderDeadlineExceeded(f"Turbotext queue {queue_id} not ready before the deadline")
            try:
                response = await send_bounded(
                    client,
                    "POST",
                    url,
                    provider="Turbotext",
                    data={"do": "get_result", "queueid": queue_id},
                    headers=headers,
                    timeout=left,
                )
                payload = _json(response)
            except (httpx.TransportError, ProviderError) as error:
                if isinstance(error, ProviderError) and not error.retryable:
                    raise
                payload = {"action": "reconnect"}  # a passing failure while polling: ask again
            if payload.get("action") == "reconnect":
                await asyncio.sleep(min(interval, max(0.0, request.remaining() - MIN_ATTEMPT_SECONDS)))
                continue
            if payload.get("success") is True:
                data: dict[str, Any] = payload["data"] if isinstance(payload.get("data"), dict) else {}
                result_url = payload.get("uploaded_image") or data.get("uploaded_image")
                if not result_url:
                    raise ProviderError("Turbotext finished without a result image", retryable=False)
                return str(result_url)
            raise ProviderError(
                f"Turbotext failed the task: {payload.get('error') or 'unknown error'}", retryable=False
            )

    async def _download(
        self, request: ProviderRequest, client: httpx.AsyncClient, result_url: str
    ) -> ProviderImage:
        host = result_host_refused(result_url)
        if host is not None:
            raise ProviderError(
                f"Turbotext's result is on {host}, a host not allowed to serve results "
                "(TURBOTEXT_RESULT_HOSTS); it was not downloaded",
                retryable=False,
            )

        async def attempt(timeout: float) -> ProviderImage:
            # No credentials: the key goes only to the API itself.
            response = await send_bounded(client, "GET", result_url, provider="Turbotext", timeout=timeout)
            if response.status_code != 200:
                raise ProviderError(
                    f"Turbotext result download HTTP {response.status_code}",
                    retryable=response.status_code in RETRYABLE_STATUS | {404, 410},
                    status_code=response.status_code,
                )
            mime_type = sniff_image_type(response.content)
            if mime_type is None:
                raise ProviderError("Turbotext result is not an image", retryable=False)
            return ProviderImage(data=response.content, mime_type=mime_type)

        return await with_retries(request, attempt, max_attempts=3)


def result_hosts() -> list[str]:
    """Hosts results may come from: ``TURBOTEXT_RESULT_HOSTS``, else the API's domain and subdomains
    (``www.turbotext.ru`` → ``turbotext.ru`` and ``.turbotext.ru``; an address or a one-label name as is)."""
    configured = [host.strip().lower() for host in django_settings.TURBOTEXT_RESULT_HOSTS if host.strip()]
    if configured:
        return configured
    api_host = httpx.URL(django_settings.TURBOTEXT_API_BASE).host.lower()
    labels = api_host.split(".")
    if len(labels) < 2 or all(label.isdigit() for label in labels) or ":" in api_host:
        return [api_host]
    domain = ".".join(labels[-2:])
    return [domain, f".{domain}"]


def result_host_refused(url: str) -> str | None:
    """None when ``url`` may be downloaded (http(s) on an allowed host); else what to name in the error."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "an invalid URL"
    host = parsed.host.lower()
    if parsed.scheme not in ("http", "https") or not host:
        return f"a {parsed.scheme or 'relative'} URL"
    for allowed in result_hosts():
        if host == allowed or (allowed.startswith(".") and host.endswith(allowed)):
            return None
    return host


def _template(request: ProviderRequest, role: str) -> TemplateImage:
    for template in request.templates:
        if template.role == role:
            return template
    raise ProviderError(f"no template with the role '{role}' is bound to this slot", retryable=False)


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise ProviderError(
            f"Turbotext HTTP {response.status_code}",
            retryable=response.status_code in RETRYABLE_STATUS,
            status_code=response.status_code,
        )
    try:
        payload = response.json()
    except ValueError as error:
        raise ProviderError("Turbotext answered with invalid JSON", retryable=True) from error
    if not isinstance(payload, dict):
        raise ProviderError("Turbotext answered with unexpected JSON", retryable=True)
    return payload
