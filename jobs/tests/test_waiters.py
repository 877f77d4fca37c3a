"""Held ingest requests are woken by NOTIFY, and by the once-a-second re-check when a NOTIFY is lost."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.services import Outcome, job_finalize
from jobs.states import JobState
from jobs.waiters import JobWaiters
from photochanger.db import db_call, db_pool_close

pytestmark = pytest.mark.django_db(transaction=True)


def pending_job() -> uuid.UUID:
    now = timezone.now()
    job = Job.objects.create(
        slot_id="slot-001", provider="local", created_at=now, expires_at=now + timedelta(seconds=30)
    )
    return job.id


def finish_without_notify(job_id: uuid.UUID) -> None:
    # What a lost notification looks like from the waiter's side: the row is final, nobody said so.
    Job.objects.filter(id=job_id).update(state=JobState.SUCCEEDED, finalized_at=timezone.now())


def finish_with_notify(job_id: uuid.UUID) -> None:
    assert job_finalize(
        job_id=job_id, outcome=Outcome(state=JobState.FAILED, failure_reason="provider_error")
    )


async def wait_for(waiters: JobWaiters, job_id: uuid.UUID, finish, timeout: float) -> bool:
    waiters.register(job_id)
    await asyncio.sleep(0.5)  # the LISTEN connection is up before the job finishes
    await db_call(finish, job_id)
    try:
        return await waiters.wait(job_id, timeout)
    finally:
        waiters.stop()


def run(coroutine):
    try:
        return asyncio.run(coroutine)
    finally:
        db_pool_close()


def test_a_lost_notification_is_caught_by_the_recheck(studio):
    job_id = pending_job()
    waiters = JobWaiters(recheck_seconds=0.2)
    assert run(wait_for(waiters, job_id, finish_without_notify, timeout=10)) is True


def test_a_notification_wakes_the_waiter_without_any_recheck(studio):
    job_id = pending_job()
    waiters = JobWaiters(recheck_seconds=3600)  # only the NOTIFY can wake it in time
    assert run(wait_for(waiters, job_id, finish_with_notify, timeout=10)) is True


def test_without_a_notification_or_a_recheck_the_waiter_times_out(studio):
    job_id = pending_job()
    waiters = JobWaiters(recheck_seconds=3600)
    assert run(wait_for(waiters, job_id, finish_without_notify, timeout=1.5)) is False
