"""The worker loop itself: idle means waiting for NOTIFY or the fallback poll, not spinning."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from jobs.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


class CountingWorker(Worker):
    claims = 0

    async def claim_step(self) -> bool:
        self.claims += 1
        return await super().claim_step()


def test_an_idle_worker_asks_for_work_only_at_the_poll_interval(studio):
    async def run_for(seconds: float) -> CountingWorker:
        worker = CountingWorker(concurrency=4, poll_seconds=0.5, lease=timedelta(seconds=5))
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(seconds)
        worker.request_stop()
        await asyncio.wait_for(task, timeout=10)
        return worker

    worker = asyncio.run(run_for(2.0))
    # One claim at start, one after the LISTEN connection comes up, then one per 0.5 s poll.
    assert 2 <= worker.claims <= 8, worker.claims
