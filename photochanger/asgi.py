"""ASGI entry point: ``uvicorn photochanger.asgi:application``.

``application`` is Django's own ASGI handler behind one plain ASGI middleware, ``BoothPaths``, that
serves the booth-facing paths (``/ingest/``, ``/api/ingest/``, ``/public/``) itself:

- an upload whose ``Content-Length`` already exceeds what the slot accepts is refused with 413 before
  the body is read (the booth sends ``Expect: 100-continue``, so it never uploads the bytes);
- a path under those prefixes that ``urls.py`` does not know gets the JSON ``not_found`` body at once
  (never Django's HTML 404 page), its body unread;
- the body is received under a time limit, a size limit and a memory budget (``photochanger.intake``);
- the request is routed through ``urls.py`` (``django.urls.resolve``) to its async view and answered,
  without Django's per-request thread and without the admin's session/CSRF/auth middleware: booth
  requests carry no cookies, and their views run their queries in the fixed pools of
  ``photochanger.db``, so a thousand held booth requests are a thousand coroutines, not threads.

Everything else (admin, static files) goes to Django's handler unchanged. Only public Django APIs are
used: ``ASGIHandler.create_request`` / ``send_response``, ``resolve``, and the views themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, ASGIRequest  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.http.response import HttpResponseBase  # noqa: E402
from django.urls import Resolver404, resolve  # noqa: E402
from django.utils import timezone  # noqa: E402

from media.storage import not_stored  # noqa: E402
from photochanger.errors import FailureReason, ServiceError  # noqa: E402
from photochanger.intake import (  # noqa: E402
    BODY_SCOPE_KEY,
    RECEIVED_AT_SCOPE_KEY,
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    Receive,
    ReceivedBody,
    intake_places,
    memory_budget,
    receive_body,
)

logger = logging.getLogger(__name__)

INGEST_PATH = re.compile(r"^/(?:api/)?ingest/(?P<slot_id>[^/]+)/?$")
BOOTH_PREFIXES = ("/ingest/", "/api/ingest/", "/public/")
BOOTH_ROOTS = ("/ingest", "/api/ingest", "/public")
# Room for the multipart envelope and the booth's text fields around the photo itself.
MULTIPART_ALLOWANCE_BYTES = 256 * 1024
# Public downloads are GETs: they have no business sending a body.
PUBLIC_MAX_BODY_BYTES = 64 * 1024
# Headers every booth-path answer carries (the admin gets them from SecurityMiddleware).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

Scope = dict[str, Any]


def is_booth_path(path: str) -> bool:
    """Paths served here: everything under the booth prefixes, and the prefixes themselves."""
    return path.startswith(BOOTH_PREFIXES) or path in BOOTH_ROOTS


def unknown_path_error() -> ServiceError:
    return ServiceError(
        FailureReason.NOT_FOUND, "Nothing is served at this path; booths post to /ingest/<slot_id>."
    )


def error_http_response(error: ServiceError, *, close: bool = False) -> HttpResponse:
    headers = {"Cache-Control": "no-store"}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if close:
        headers["Connection"] = "close"
    return HttpResponse(
        json.dumps(error.body()), status=error.http_status, content_type="application/json", headers=headers
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_secure(scope: Scope) -> bool:
    """HTTPS as Django's ``request.is_secure()`` judges it: the proxy's header when configured, else the scheme."""
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        name, secure_value = proxy_header
        wanted = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
        for header, value in scope.get("headers", []):
            if header == wanted:
                return bool(value.decode("latin-1").split(",", 1)[0].strip() == secure_value)
    return bool(scope.get("scheme") == "https")


def strict_transport_security() -> str:
    """The HSTS value, built from the same settings as Django's SecurityMiddleware."""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


def ingest_body_limit(size_limit_mb: int | None) -> int:
    """The most body bytes an ingest may send: the slot's photo limit (or the absolute cap) plus room."""
    photo_limit = settings.INGEST_ABSOLUTE_MAX_BYTES
    if size_limit_mb is not None:
        photo_limit = min(int(size_limit_mb) * 1024 * 1024, photo_limit)
    return photo_limit + MULTIPART_ALLOWANCE_BYTES


async def _slot_size_limit_mb(slot_id: str) -> int | None:
    from photochanger.db import db_call
    from slots.selectors import slot_size_limit_mb

    return await db_call(slot_size_limit_mb, slot_id=slot_id)


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


class BoothPaths:
    """Plain ASGI middleware: serves the booth-facing paths, hands everything else to Django."""

    def __init__(self, django: ASGIHandler) -> None:
        self.django = django

    async def __call__(self, scope: Scope, receive: Receive, send: Any) -> None:
        if scope["type"] != "http" or not is_booth_path(scope.get("path", "")):
            await self.django(scope, receive, send)
            return
        scope[RECEIVED_AT_SCOPE_KEY] = timezone.now()
        match = INGEST_PATH.match(scope["path"])
        is_ingest = match is not None and scope.get("method") == "POST"
        slot_id = match.group("slot_id") if match else ""
        if is_ingest:
            from jobs.ingest import recent_lockouts

            client = scope.get("client") or (None, None)
            refusal = recent_lockouts.refusal(client[0])
            if refusal is not None:
                # A client refused for guessing a moment ago: its body is not even read, and the answer
                # takes a second (a sleeping coroutine costs nothing; a guesser gets one try a second).
                await asyncio.sleep(recent_lockouts.TARPIT_SECONDS)
                await self._refuse(scope, send, slot_id, refusal, log=True)
                return
        if not is_ingest and not _resolves(scope["path"]):
            # An unknown booth path (a booth set up with a wrong URL): answered before any body is read.
            await self._refuse(scope, send, slot_id, unknown_path_error(), log=False)
            return
        try:
            max_bytes = await self._body_limit(scope, slot_id) if is_ingest else PUBLIC_MAX_BODY_BYTES
        except ServiceError as error:
            await self._refuse(scope, send, slot_id, error, log=is_ingest)
            return
        body = ReceivedBody(memory_budget(), settings.FILE_UPLOAD_MAX_MEMORY_SIZE)
        scope[BODY_SCOPE_KEY] = body
        try:
            try:
                await receive_body(
                    receive,
                    body,
                    timeout=settings.INGEST_BODY_TIMEOUT_SECONDS,
                    max_bytes=max_bytes,
                    places=intake_places() if is_ingest else None,
                    stall=settings.INGEST_INTAKE_STALL_SECONDS,
                )
            except ClientGone:
                return
            except BodyTimeout:
                timeout = settings.INGEST_BODY_TIMEOUT_SECONDS
                too_slow = ServiceError(
                    FailureReason.REQUEST_TIMEOUT, f"The photo did not arrive within {timeout:g} s."
                )
                await self._refuse(scope, send, slot_id, too_slow, log=is_ingest)
                return
            except BodyTooLarge:
                too_large = ServiceError(FailureReason.PAYLOAD_TOO_LARGE)
                await self._refuse(scope, send, slot_id, too_large, log=is_ingest)
                return
            except OSError as error:
                # A body spooled to a full temporary disk: 503 (the spool file is unnamed, closed below).
                await self._refuse(scope, send, slot_id, not_stored(error, "the upload"), log=is_ingest)
                return
            await self._serve(scope, receive, send, body)
        finally:
            body.close()

    async def _body_limit(self, scope: Scope, slot_id: str) -> int:
        """The body size allowed for this ingest; raises 413 at once when Content-Length is over it."""
        length = _content_length(scope)
        if length is not None and length <= ingest_body_limit(1):
            return ingest_body_limit(None)  # small: no slot allows less than 1 MB, nothing to look up
        limit_mb = await _slot_size_limit_mb(slot_id)
        if length is not None and length > ingest_body_limit(limit_mb):
            if limit_mb is None:
                raise ServiceError(FailureReason.PAYLOAD_TOO_LARGE)
            raise ServiceError(
                FailureReason.PAYLOAD_TOO_LARGE, f"The photo exceeds this slot's limit of {limit_mb} MB."
            )
        return ingest_body_limit(limit_mb)  # also bounds a chunked body, which has no length to check

    async def _refuse(self, scope: Scope, send: Any, slot_id: str, error: ServiceError, *, log: bool) -> None:
        """Answer before the view ran (the connection is closed: the rest of the body is not read)."""
        from photochanger.db import DatabaseUnavailable

        if log and not isinstance(error, DatabaseUnavailable):  # with the database down: answer at once
            from jobs.ingest import ingest_log_rejection
            from photochanger.db import db_call

            client = scope.get("client") or (None, None)
            with contextlib.suppress(ServiceError):  # the database is down: the answer still goes out
                await db_call(
                    ingest_log_rejection,
                    slot_id=slot_id,
                    reason=error.reason,
                    client_ip=client[0],
                    duration_ms=int((timezone.now() - scope[RECEIVED_AT_SCOPE_KEY]).total_seconds() * 1000),
                )
        await self._send(error_http_response(error, close=True), send, scope)

    async def _send(self, response: HttpResponseBase, send: Any, scope: Scope) -> None:
        await self.django.send_response(self._finish(response, scope), send)

    async def _serve(self, scope: Scope, receive: Receive, send: Any, body: ReceivedBody) -> None:
        if _content_length(scope) is None:
            # A chunked body: now that it is complete its length is known, and Django's form parsers
            # need it. (The ASGI scope is the application's to read and extend.)
            headers = [
                (name, value) for name, value in scope.get("headers", []) if name != b"transfer-encoding"
            ]
            scope["headers"] = [*headers, (b"content-length", str(body.size).encode())]
        request, _refusal = self.django.create_request(scope, body.file)
        if request is None:
            await self._send(
                error_http_response(ServiceError(FailureReason.INVALID_REQUEST), close=True), send, scope
            )
            return
        try:
            view = asyncio.ensure_future(self._call_view(request))
            # The booth may hang up while its request is held: stop waiting for it (the job goes on).
            hangup = asyncio.ensure_future(self._wait_for_disconnect(receive))
            await asyncio.wait({view, hangup}, return_when=asyncio.FIRST_COMPLETED)
            hangup.cancel()
            if not view.done():
                view.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await view
                return
            response = view.result()
            await self._send(response, send, scope)
            response.close()
        finally:
            request.close()

    async def _call_view(self, request: ASGIRequest) -> HttpResponseBase:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return error_http_response(unknown_path_error())
        request.resolver_match = match
        try:
            response = match.func(request, *match.args, **match.kwargs)
            if asyncio.iscoroutine(response):
                response = await response
            render = getattr(response, "render", None)
            if callable(render):
                response = render()  # DRF responses render lazily; JSON bodies are tiny
        except Exception:
            logger.exception("unhandled error in %s", request.path)
            response = error_http_response(ServiceError(FailureReason.INTERNAL_ERROR))
        return response

    @staticmethod
    def _finish(response: HttpResponseBase, scope: Scope) -> HttpResponseBase:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if settings.SECURE_HSTS_SECONDS and _is_secure(scope):
            response.headers.setdefault("Strict-Transport-Security", strict_transport_security())
        # Booth software reads the image by its length: no chunked encoding.
        if not response.streaming and "Content-Length" not in response:
            response["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        return response

    @staticmethod
    async def _wait_for_disconnect(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return


application = BoothPaths(django_application)
