"""Held ingest requests waiting for their job to become final, woken by PostgreSQL NOTIFY.

One LISTEN connection per web process (psycopg async) receives ``photochanger_job_finished`` with the
job id and wakes that request's future. The row stays the only source of truth: a woken request re-reads
it. Once a second (``INGEST_WAITER_RECHECK_SECONDS``), one query re-checks every waiting job (covering a
lost notification or a LISTEN connection that is down), so waiting costs no connection per request and
no polling per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from django.conf import settings

from jobs.models import Job
from jobs.services import CHANNEL_JOB_FINISHED
from jobs.states import FINAL_STATES
from photochanger.db import db_housekeeping_call, listen_forever

logger = logging.getLogger(__name__)


def _final_among(job_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    return list(Job.objects.filter(id__in=job_ids, state__in=list(FINAL_STATES)).values_list("id", flat=True))


class JobWaiters:
    def __init__(self, recheck_seconds: float | None = None) -> None:
        # None: INGEST_WAITER_RECHECK_SECONDS, read when the re-check starts (not at import).
        self._recheck_seconds = recheck_seconds
        self._futures: dict[uuid.UUID, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._recheck_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def held(self) -> int:
        return len(self._futures)

    def register(self, job_id: uuid.UUID) -> asyncio.Future[None]:
        """Start waiting for ``job_id`` (before the job exists, so no notification can be missed)."""
        self._ensure_started()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures[job_id] = future
        return future

    def discard(self, job_id: uuid.UUID) -> None:
        self._futures.pop(job_id, None)

    async def wait(self, job_id: uuid.UUID, timeout: float) -> bool:
        """Wait until the job is reported final or ``timeout`` passes; True when woken."""
        future = self._futures.get(job_id) or self.register(job_id)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=max(0.0, timeout))
            return True
        except TimeoutError:
            return False
        finally:
            self.discard(job_id)

    def _wake(self, job_id: uuid.UUID) -> None:
        future = self._futures.get(job_id)
        if future is not None and not future.done():
            future.set_result(None)

    def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._loop = loop
            self._task = loop.create_task(self._listen_forever(), name="job-waiters-listen")
            self._recheck_task = loop.create_task(self._recheck_forever(), name="job-waiters-recheck")

    async def _listen_forever(self) -> None:
        # Anything that finished while we were not listening is picked up by the recheck on connect.
        await listen_forever(CHANNEL_JOB_FINISHED, self._wake_payload, on_connected=self._recheck_once)

    def _wake_payload(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self._wake(uuid.UUID(payload))

    @property
    def recheck_seconds(self) -> float:
        if self._recheck_seconds is not None:
            return self._recheck_seconds
        return float(settings.INGEST_WAITER_RECHECK_SECONDS)

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            try:
                await self._recheck_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("waiter recheck failed: %s", error.__class__.__name__)

    def stop(self) -> None:
        """Cancel the LISTEN and re-check tasks (end of a test; a process just exits)."""
        for task in (self._task, self._recheck_task):
            if task is not None:
                task.cancel()
        self._task = self._recheck_task = None

    async def _recheck_once(self) -> None:
        waiting = [job_id for job_id, future in self._futures.items() if not future.done()]
        if not waiting:
            return
        for job_id in await db_housekeeping_call(_final_among, waiting):
            self._wake(job_id)


job_waiters = JobWaiters()
