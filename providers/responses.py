"""Provider answers read within bounds, so a misbehaving provider cannot fill a worker's memory or logs.

- A success (HTTP 200) is read up to ``PROVIDER_MAX_RESPONSE_BYTES`` (default 64 MiB; a 4K PNG as
  base64 in Gemini's JSON is about 40 MB), counted as it arrives (after decompression), with or without
  a ``Content-Length``; a larger one is a permanent failure, and its rest is never downloaded.
- Of an error answer only the first ``ERROR_BODY_MAX_BYTES`` are read: enough for the JSON error of a
  real provider; a longer one is cut (its JSON then does not parse, and the HTTP reason is reported).
- A redirect is never followed (the worker's clients have ``follow_redirects=False``): the API key
  would go along to whatever host it names. It is a permanent failure naming only that host.

Time is bounded by the caller (the deadline): every attempt's timeout is the time left, and the worker
cuts the whole provider call at the job's deadline, whatever arrives byte by byte.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from providers.base import ProviderError

ERROR_BODY_MAX_BYTES = 64 * 1024
# Headers describing the body as it came over the wire: the answer handed back holds it decoded.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def send_bounded(
    client: httpx.AsyncClient, method: str, url: str, *, provider: str, timeout: float, **request: Any
) -> httpx.Response:
    """Send one request and read its answer within the bounds above; the answer comes back fully read.

    ``request``: what ``httpx.AsyncClient.build_request`` takes (content, data, json, headers).
    Raises ``ProviderError`` (permanent) for a redirect or a success over the size limit; transport
    errors and timeouts come up as httpx raises them (``with_retries`` handles those).
    """
    sent = client.build_request(method, url, timeout=timeout, **request)
    response = await client.send(sent, stream=True)
    try:
        status = response.status_code
        if response.is_redirect:
            target = response.headers.get("location", "")
            host = httpx.URL(target).host if target else ""
            raise ProviderError(
                f"{provider} answered HTTP {status}, a redirect to {host or 'another address'}; "
                "redirects are not followed",
                retryable=False,
                status_code=status,
            )
        content = await _read_bounded(response, provider=provider)
    finally:
        await response.aclose()
    headers = [(name, value) for name, value in response.headers.multi_items() if name not in _WIRE_HEADERS]
    return httpx.Response(
        status,
        headers=headers,
        content=content,
        request=sent,
        extensions={"reason_phrase": response.extensions.get("reason_phrase", b"")},
    )


async def _read_bounded(response: httpx.Response, *, provider: str) -> bytes:
    success = response.status_code == 200
    limit = settings.PROVIDER_MAX_RESPONSE_BYTES if success else ERROR_BODY_MAX_BYTES
    declared = response.headers.get("content-length", "")
    if success and declared.isdigit() and int(declared) > limit:
        raise _too_large(provider, limit, declared=int(declared))
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > limit:
            if success:
                raise _too_large(provider, limit)
            del content[limit:]  # the start of an error is all we report; the rest stays unread
            break
    return bytes(content)


def _too_large(provider: str, limit: int, *, declared: int | None = None) -> ProviderError:
    size = f" ({_size(declared)})" if declared is not None else ""
    return ProviderError(
        f"{provider}'s answer{size} is larger than the limit of {_size(limit)} "
        "(PROVIDER_MAX_RESPONSE_BYTES); it was not read",
        retryable=False,
        status_code=200,
    )


def _size(count: int) -> str:
    return f"{count / 1_048_576:.0f} MB" if count >= 1_048_576 else f"{count} bytes"
