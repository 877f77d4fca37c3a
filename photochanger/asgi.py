"""ASGI entry point: ``uvicorn photochanger.asgi:application``.

Two things happen before Django sees a request:

- booth uploads whose ``Content-Length`` already exceeds what the slot accepts are refused with 413
  before the body is read (the booth sends ``Expect: 100-continue``, so it never uploads the bytes);
- the booth-facing paths (``/ingest/``, ``/api/ingest/``, ``/public/``) are served without Django's
  per-request thread (``ThreadSensitiveContext``): their views are async and run their queries in the
  fixed pool of ``photochanger.db``, so a thousand held requests do not mean a thousand threads.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from photochanger.errors import FailureReason, ServiceError  # noqa: E402

INGEST_PATH = re.compile(r"^/(?:api/)?ingest/(?P<slot_id>[^/]+)/?$")
HOT_PREFIXES = ("/ingest/", "/api/ingest/", "/public/")
# Room for the multipart envelope and the booth's text fields around the photo itself.
MULTIPART_ALLOWANCE_BYTES = 256 * 1024

Scope = dict[str, Any]


class HotPathASGIHandler(ASGIHandler):
    """Django's handler without the per-request thread context (see module docstring).

    Its middleware is ``HOT_PATH_MIDDLEWARE``: booth requests carry no session, cookie or CSRF token, so
    the admin's session/auth/CSRF/messages/locale layers would only cost time on every photo.
    """

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response_async)  # type: ignore[attr-defined]
        for middleware_path in reversed(settings.HOT_PATH_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(middleware_path)(handler))
        self._middleware_chain = handler


hot_path_application = HotPathASGIHandler()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _early_rejection(scope: Scope) -> ServiceError | None:
    """A 413 decided from headers alone, or None to let the view decide after reading the body."""
    match = INGEST_PATH.match(scope.get("path", ""))
    length = _content_length(scope)
    if scope.get("method") != "POST" or match is None or length is None:
        return None
    if length <= 1024 * 1024 + MULTIPART_ALLOWANCE_BYTES:
        return None  # no slot accepts less than 1 MB: nothing to decide early
    from photochanger.db import db_call
    from slots.models import Slot

    slot_id = match.group("slot_id")
    limit = await db_call(
        lambda: (
            Slot.objects.filter(id=slot_id, is_active=True).values_list("size_limit_mb", flat=True).first()
        )
    )
    if limit is None:
        return None  # unknown or disabled slot: the view answers 404 in the catalogue's order
    allowed = min(int(limit) * 1024 * 1024, settings.INGEST_ABSOLUTE_MAX_BYTES) + MULTIPART_ALLOWANCE_BYTES
    if length <= allowed:
        return None
    return ServiceError(
        FailureReason.PAYLOAD_TOO_LARGE, f"The photo exceeds this slot's limit of {limit} MB."
    )


async def _send_error(send: Any, error: ServiceError) -> None:
    body = json.dumps(error.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class IntakeGate:
    """Bounds how many booth uploads are read and accepted at once (``INGEST_MAX_CONCURRENT_INTAKE``).

    A request takes a place when its body is first read and gives it back once the photo is stored
    (the view calls ``release``) or the request ends. Requests waiting for a place leave their bytes in
    the socket (uvicorn stops reading past its buffer), so a thousand simultaneous uploads do not
    become a thousand photos in memory.
    """

    _semaphore: asyncio.Semaphore | None = None

    def __init__(self) -> None:
        if IntakeGate._semaphore is None:
            IntakeGate._semaphore = asyncio.Semaphore(settings.INGEST_MAX_CONCURRENT_INTAKE)
        self._state = "waiting"

    async def acquire(self) -> None:
        if self._state == "waiting":
            assert IntakeGate._semaphore is not None
            await IntakeGate._semaphore.acquire()
            self._state = "held"

    def release(self) -> None:
        if self._state == "held":
            assert IntakeGate._semaphore is not None
            IntakeGate._semaphore.release()
        self._state = "done"


async def application(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http" or not scope.get("path", "").startswith(HOT_PREFIXES):
        await django_application(scope, receive, send)
        return
    try:
        rejection = await _early_rejection(scope)
    except ServiceError as error:
        rejection = error
    if rejection is not None:
        from jobs.ingest import ingest_log_rejection
        from photochanger.db import db_call

        match = INGEST_PATH.match(scope["path"])
        client = scope.get("client") or (None, None)
        try:
            await db_call(
                ingest_log_rejection,
                slot_id=match.group("slot_id") if match else "",
                reason=rejection.reason,
                client_ip=client[0],
                duration_ms=0,
            )
        except ServiceError:
            pass  # the database is down: the answer below still goes out
        await _send_error(send, rejection)
        return
    if INGEST_PATH.match(scope.get("path", "")) is None or scope.get("method") != "POST":
        await hot_path_application(scope, receive, send)
        return
    gate = IntakeGate()
    scope["photochanger.intake_gate"] = gate

    async def gated_receive() -> Any:
        await gate.acquire()
        return await receive()

    try:
        await hot_path_application(scope, gated_receive, send)
    finally:
        gate.release()
