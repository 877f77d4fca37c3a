"""The queue's SQL services: claim, requeue, finalize guards."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import Job
from jobs.services import Outcome
from jobs.states import JobState

pytestmark = pytest.mark.django_db


def make_pending_job() -> Job:
    now = timezone.now()
    return Job.objects.create(
        id=uuid.uuid4(),
        slot_id="slot-001",
        provider="local",
        created_at=now,
        expires_at=now + timedelta(seconds=48),
    )


def test_an_older_claim_cannot_finalize_a_job_claimed_again():
    job = make_pending_job()
    first = services.jobs_claim(worker="w1", limit=1, lease=timedelta(seconds=10))[0]
    Job.objects.filter(id=job.id).update(state="pending", lease_expires_at=None)  # the lease lapsed
    second = services.jobs_claim(worker="w1", limit=1, lease=timedelta(seconds=10))[0]
    assert (first.claim_count, second.claim_count) == (1, 2)

    done = Outcome(state=JobState.FAILED, failure_reason="provider_error", failure_message="x")
    assert not services.job_finalize(job_id=job.id, outcome=done, claimed_by="w1", claim_count=1)
    assert services.job_finalize(job_id=job.id, outcome=done, claimed_by="w1", claim_count=2)
    assert Job.objects.get(id=job.id).state == "failed"


def test_a_final_job_is_never_finalized_twice():
    job = make_pending_job()
    services.jobs_claim(worker="w1", limit=1, lease=timedelta(seconds=10))
    done = Outcome(state=JobState.FAILED, failure_reason="provider_error", failure_message="x")
    assert services.job_finalize(job_id=job.id, outcome=done)
    assert not services.job_finalize(job_id=job.id, outcome=Outcome(state=JobState.CANCELLED))
    assert Job.objects.get(id=job.id).state == "failed"


def test_a_claimed_job_is_not_claimed_again_by_another_worker():
    jobs = [make_pending_job() for _ in range(3)]
    claimed = services.jobs_claim(worker="w1", limit=2, lease=timedelta(seconds=10))
    rest = services.jobs_claim(worker="w2", limit=5, lease=timedelta(seconds=10))
    assert len(claimed) == 2 and len(rest) == 1
    assert {job.id for job in jobs} == {item.id for item in claimed + rest}
