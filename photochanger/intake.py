"""Receiving booth uploads: what a request may hold while its body arrives, and for how long.

A booth on venue Wi-Fi or 4G may take many seconds to send a 6 MB photo, and an attacker may send one
byte a second on purpose. So receiving a body holds nothing that other booths need:

- **time**: the whole body must arrive within ``INGEST_BODY_TIMEOUT_SECONDS`` (then 408);
- **size**: counted as the bytes arrive, with or without ``Content-Length`` (then 413);
- **places**: at most ``INGEST_MAX_CONCURRENT_INTAKE`` bodies per process are *flowing* at once. A
  request takes a place before its first read — which is when the booth, sending ``Expect:
  100-continue``, is told to upload — so a burst of a thousand uploads waits at the booths, not in our
  memory. A body that stalls for ``INGEST_INTAKE_STALL_SECONDS`` gives its place back and goes on
  arriving without one: a slow client never holds what other booths need;
- **memory**: bodies stay in memory while the process-wide budget ``INGEST_BODY_MEMORY_BUDGET_BYTES``
  (and ``FILE_UPLOAD_MAX_MEMORY_SIZE`` per body) allows, and go to a temporary file beyond it. A slow
  body holds only the few bytes it has sent.

Parsing, checking and storing the photo then run on the bounded CPU pool (``photochanger.offload``).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

Receive = Callable[[], Awaitable[dict[str, Any]]]
# What the booth-path middleware (photochanger.asgi.BoothPaths) puts in the ASGI scope: the request's
# ReceivedBody, and the wall-clock time its headers arrived (a booth's own timeout runs from there).
BODY_SCOPE_KEY = "photochanger.body"
RECEIVED_AT_SCOPE_KEY = "photochanger.received_at"


class BodyTimeout(Exception):
    """The body did not arrive within the body timeout."""


class BodyTooLarge(Exception):
    """The body grew past the size allowed for this request."""


class ClientGone(Exception):
    """The client disconnected before the body (or the answer) was complete."""


class MemoryBudget:
    """Bytes of request bodies held in memory at once in this process (event-loop only, no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, amount: int) -> bool:
        if self.used + amount > self.limit:
            return False
        self.used += amount
        return True

    def give_back(self, amount: int) -> None:
        self.used = max(0, self.used - amount)


_budget: MemoryBudget | None = None


def memory_budget() -> MemoryBudget:
    global _budget
    if _budget is None:
        _budget = MemoryBudget(settings.INGEST_BODY_MEMORY_BUDGET_BYTES)
    return _budget


class ReceivedBody:
    """A request body being received: in memory while the budget allows, in a temporary file beyond it."""

    def __init__(self, budget: MemoryBudget, per_body_memory: int) -> None:
        # max_size=0: never rolls over by itself; ``write`` decides against the shared budget.
        self.file = tempfile.SpooledTemporaryFile(max_size=0, mode="w+b")
        self.size = 0
        self._budget = budget
        self._per_body_memory = per_body_memory
        self._in_memory = 0
        self._on_disk = False

    @property
    def on_disk(self) -> bool:
        return self._on_disk

    def write(self, chunk: bytes) -> None:
        if not self._on_disk:
            fits = self._in_memory + len(chunk) <= self._per_body_memory
            if fits and self._budget.take(len(chunk)):
                self._in_memory += len(chunk)
            else:
                self.file.rollover()
                self._release_memory()
                self._on_disk = True
        self.file.write(chunk)
        self.size += len(chunk)

    def _release_memory(self) -> None:
        self._budget.give_back(self._in_memory)
        self._in_memory = 0

    def close(self) -> None:
        self._release_memory()
        self.file.close()


class IntakePlaces:
    """The places of one process (one event loop): FIFO, so a waiting booth is served in turn."""

    def __init__(self, places: int) -> None:
        self._semaphore = asyncio.Semaphore(places)

    async def take(self) -> None:
        await self._semaphore.acquire()

    def give_back(self) -> None:
        self._semaphore.release()

    @property
    def free(self) -> bool:
        return not self._semaphore.locked()


_places: dict[asyncio.AbstractEventLoop, IntakePlaces] = {}


def intake_places() -> IntakePlaces:
    loop = asyncio.get_running_loop()
    places = _places.get(loop)
    if places is None:
        _places.clear()  # one event loop per process; a new one (tests) starts fresh
        places = _places[loop] = IntakePlaces(settings.INGEST_MAX_CONCURRENT_INTAKE)
    return places


async def receive_body(
    receive: Receive,
    body: ReceivedBody,
    *,
    timeout: float,
    max_bytes: int,
    places: IntakePlaces | None = None,
    stall: float = 0.0,
) -> None:
    """Read the whole request body into ``body``; raises BodyTimeout, BodyTooLarge or ClientGone.

    With ``places``: a place is taken before the first read and given back when the body is complete
    or when no data came for ``stall`` seconds (the rest then arrives without a place).
    """
    holding = False
    try:
        async with asyncio.timeout(timeout):
            if places is not None:
                await places.take()
                holding = True
            while True:
                if holding:
                    try:
                        message = await asyncio.wait_for(receive(), stall)
                    except TimeoutError:
                        # Stalled: a slow body keeps arriving, but without a place others need. (The
                        # cancelled receive() loses nothing: the server keeps the bytes for the next.)
                        assert places is not None
                        places.give_back()
                        holding = False
                        continue
                else:
                    message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                chunk = message.get("body", b"")
                if body.size + len(chunk) > max_bytes:
                    raise BodyTooLarge()
                if chunk:
                    body.write(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise BodyTimeout() from None
    finally:
        if holding:
            assert places is not None
            places.give_back()
    body.file.seek(0)


def received_at(request: Any) -> datetime:
    """When the request's headers arrived (set by the middleware; now, for a request made otherwise)."""
    value = getattr(request, "scope", {}).get(RECEIVED_AT_SCOPE_KEY)
    return value if isinstance(value, datetime) else timezone.now()


def release_body(request: Any) -> None:
    """Free a request's body (memory budget, temporary file) as soon as the photo is stored.

    ``request`` is the view's request (Django's ``ASGIRequest`` or DRF's wrapper around it, which
    exposes ``scope``); a held booth request then waits without its photo in memory.
    """
    body = getattr(request, "scope", {}).get(BODY_SCOPE_KEY)
    if isinstance(body, ReceivedBody):
        body.close()
