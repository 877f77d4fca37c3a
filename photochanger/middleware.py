"""Middleware for the booth-facing hot path (see ``HOT_PATH_MIDDLEWARE``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.decorators import async_only_middleware


@async_only_middleware
def content_length_middleware(
    get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]],
) -> Callable[[HttpRequest], Awaitable[HttpResponseBase]]:
    """Send ``Content-Length`` (not chunked encoding) with every complete response.

    Booth software reads the image by its length; Django's CommonMiddleware does this for the admin.
    """

    async def middleware(request: HttpRequest) -> HttpResponseBase:
        response = await get_response(request)
        if not response.streaming and "Content-Length" not in response:
            response["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        return response

    return middleware
