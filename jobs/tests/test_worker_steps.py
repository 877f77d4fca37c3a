"""The worker's steps driven in this process: caps held by job rows, deadlines, lost claims, local work."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from jobs import services
from jobs.models import Job
from jobs.tests.queue import make_pending_job, set_provider_caps
from jobs.worker import Worker
from photochanger.db import db_call
from stats.models import ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = timedelta(seconds=30)


@pytest.fixture
def queue(studio, media_root, worker_threads_closed, settings, fake_gemini):
    """Static slots, keys, a fresh fake Gemini; the worker in this process talks to it."""
    settings.GEMINI_API_BASE = fake_gemini.base_url
    return media_root


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(scenario())


def test_a_stale_claim_losing_its_finalize_leaves_the_cap_to_the_jobs_new_claim(queue, fake_gemini):
    set_provider_caps({"gemini": 1})
    now = timezone.now()
    first = make_pending_job(created_at=now - timedelta(seconds=2))
    second = make_pending_job(created_at=now - timedelta(seconds=1))
    fake_gemini.delay = 1.0
    fake_gemini.set_script(["image", "hang"])
    stale = Worker(concurrency=4, lease=LEASE)
    fresh = Worker(concurrency=4, lease=LEASE)

    async def scenario() -> None:
        async with stale.http_clients(), fresh.http_clients():
            await stale.claim_step()
            await eventually(lambda: fake_gemini.calls == 1)
            # The stale worker's loop stalls past its lease: recovery hands the job back to the queue.
            with time_machine.travel(timezone.now() + LEASE + timedelta(seconds=1)):
                assert await db_call(services.jobs_recover_stale) == (1, 0)
            await fresh.claim_step()
            await eventually(lambda: fake_gemini.calls == 2)
            await stale.drain()  # its provider answers; its finalize must lose to the newer claim
            await fresh.claim_step()
            fresh.abort()
            await fresh.drain()

    run(scenario)
    assert (stale.stats.lost, stale.stats.succeeded) == (1, 0)
    assert fresh.stats.claimed == 1, "the second job was not claimable while the first one's new claim ran"
    job = Job.objects.get(id=first.id)
    assert (job.state, job.claimed_by, job.claim_count) == ("processing", fresh.name, 2)
    assert Job.objects.get(id=second.id).state == "pending"
    assert list((queue / "results").glob("*")) == [], "the stale claim's result was thrown away"


def test_a_provider_giving_up_before_the_deadline_is_timed_out_by_its_worker_at_the_deadline(
    queue, fake_gemini
):
    fake_gemini.default_mode = "503"
    # After the first 503 the next backoff (2–4 s) cannot fit in the ~2 s left: the adapter gives up early.
    job = make_pending_job(
        settings={"prompt": "p", "retry_policy": {"base_backoff_seconds": 8}}, expires_in=2
    )
    worker = Worker(concurrency=4, lease=LEASE)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        with time_machine.travel(timezone.now(), tick=True) as clock:
            async with worker.http_clients():
                await worker.claim_step()
                await eventually(lambda: fake_gemini.calls == 1)
                await asyncio.sleep(0.2)  # the 503 comes back and the adapter gives up
                await worker.housekeeping_step()
                seen["before"] = await db_call(Job.objects.get, id=job.id)
                seen["lost_before"] = worker.stats.lost
                clock.shift(timedelta(seconds=2))
                await asyncio.wait_for(worker.drain(), timeout=5)

    run(scenario)
    before = seen["before"]
    assert (before.state, before.claimed_by, seen["lost_before"]) == ("processing", worker.name, 0), (
        "still the worker's, lease renewed, nothing counted lost while it waits for the deadline"
    )
    assert before.lease_expires_at > before.claimed_at + LEASE, "its lease was renewed while it waited"
    row = Job.objects.get(id=job.id)
    assert (row.state, row.failure_reason, row.provider_calls) == ("timeout", "provider_timeout", 1)
    assert row.finalized_at is not None and row.finalized_at >= row.expires_at
    assert (worker.stats.timed_out, worker.stats.lost) == (1, 0)
    assert fake_gemini.calls == 1


def test_a_worker_whose_job_was_claimed_again_elsewhere_stops_calling_and_does_not_finalize(
    queue, fake_gemini
):
    fake_gemini.default_mode = "hang"
    job = make_pending_job()
    worker = Worker(concurrency=4, lease=LEASE)

    async def scenario() -> None:
        async with worker.http_clients():
            await worker.claim_step()
            await eventually(lambda: fake_gemini.calls == 1 and fake_gemini.inflight == 1)
            with time_machine.travel(timezone.now() + LEASE + timedelta(seconds=1)):
                await db_call(services.jobs_recover_stale)
                await db_call(services.jobs_claim, worker="elsewhere", limit=1, lease=LEASE)
            await worker.housekeeping_step()
            await asyncio.wait_for(worker.drain(), timeout=5)
            await eventually(lambda: fake_gemini.inflight == 0)

    run(scenario)
    assert worker.stats.lost == 1
    assert fake_gemini.calls == 1, "no further provider calls after the claim was lost"
    row = Job.objects.get(id=job.id)
    assert (row.state, row.claimed_by, row.claim_count) == ("processing", "elsewhere", 2)
    assert not ProcessingLogEntry.objects.filter(job_id=job.id, event="job_finished").exists()


def test_a_worker_claiming_its_own_lapsed_job_again_stops_the_older_attempt(queue, fake_gemini):
    fake_gemini.set_script(["hang"])
    job = make_pending_job()
    worker = Worker(concurrency=4, lease=LEASE)

    async def scenario() -> None:
        async with worker.http_clients():
            await worker.claim_step()
            await eventually(lambda: fake_gemini.calls == 1)
            with time_machine.travel(timezone.now() + LEASE + timedelta(seconds=1)):
                await db_call(services.jobs_recover_stale)
            await worker.claim_step()
            await asyncio.wait_for(worker.drain(), timeout=10)

    run(scenario)
    assert (worker.stats.claimed, worker.stats.lost, worker.stats.succeeded) == (2, 1, 1)
    row = Job.objects.get(id=job.id)
    assert (row.state, row.claim_count) == ("succeeded", 2)


def test_a_worker_requeues_other_workers_lapsed_leases_only_once_the_database_has_worked_for_a_whole_lease(
    queue,
):
    # A lapsed lease after a database outage (or seen by a worker just started) may belong to a live
    # worker that could not renew it yet: requeuing it would send the job to the provider twice.
    job = make_pending_job()
    lease = timedelta(seconds=3)  # room for a slow first query on a busy machine before the first check
    worker = Worker(concurrency=4, lease=lease)

    def state() -> str:
        return str(Job.objects.get(id=job.id).state)

    async def scenario() -> tuple[str, str]:
        await db_call(services.jobs_claim, worker="elsewhere", limit=1, lease=timedelta(milliseconds=100))
        await asyncio.sleep(0.2)  # the other worker's lease has lapsed
        await worker.housekeeping_step()
        early = await db_call(state)
        await asyncio.sleep(lease.total_seconds())
        await worker.housekeeping_step()
        return early, await db_call(state)

    early, later = run(scenario)
    assert early == "processing", "left alone while the worker had not seen the database work for a lease"
    assert later == "pending", "requeued once it had"


def test_local_jobs_are_rendered_on_a_pool_of_two_threads(queue):
    jobs = [make_pending_job(provider="local", operation="sepia", settings={}) for _ in range(6)]
    worker = Worker(concurrency=16, lease=LEASE)

    async def scenario() -> None:
        async with worker.http_clients():
            await worker.claim_step()
            await asyncio.wait_for(worker.drain(), timeout=30)

    run(scenario)
    assert worker.stats.succeeded == 6
    assert set(Job.objects.filter(id__in=[job.id for job in jobs]).values_list("state", flat=True)) == {
        "succeeded"
    }
    renderers = [thread for thread in threading.enumerate() if thread.name.startswith("local-render")]
    assert 1 <= len(renderers) <= 2
