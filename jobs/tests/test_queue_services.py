"""The queue's services: claim within the provider caps, requeue, lease renewal, finalize guards."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.utils import timezone

from jobs import services
from jobs.models import Job
from jobs.services import Outcome
from jobs.states import JobState
from jobs.tests.queue import make_pending_job, processing_count, set_provider_caps
from photochanger.sql import column, sql

pytestmark = pytest.mark.django_db

LEASE = timedelta(seconds=10)
DONE = Outcome(state=JobState.FAILED, failure_reason="provider_error", failure_message="x")


@pytest.fixture(autouse=True)
def stored_inputs(media_root):
    return media_root


def claim(worker: str = "w1", limit: int = 10) -> list[services.ClaimedJob]:
    return services.jobs_claim(worker=worker, limit=limit, lease=LEASE)


def test_an_older_claim_cannot_finalize_a_job_claimed_again():
    job = make_pending_job(provider="local")
    first = claim(limit=1)[0]
    Job.objects.filter(id=job.id).update(state="pending", lease_expires_at=None)  # the lease lapsed
    second = claim(limit=1)[0]
    assert (first.claim_count, second.claim_count) == (1, 2)

    assert not services.job_finalize(job_id=job.id, outcome=DONE, claimed_by="w1", claim_count=1)
    assert services.job_finalize(job_id=job.id, outcome=DONE, claimed_by="w1", claim_count=2)
    assert Job.objects.get(id=job.id).state == "failed"


def test_a_final_job_is_never_finalized_twice():
    job = make_pending_job(provider="local")
    claim(limit=1)
    assert services.job_finalize(job_id=job.id, outcome=DONE)
    assert not services.job_finalize(job_id=job.id, outcome=Outcome(state=JobState.CANCELLED))
    assert Job.objects.get(id=job.id).state == "failed"


def test_a_timeout_is_refused_before_the_deadline_and_written_after_it():
    job = make_pending_job(provider="local", expires_in=5)
    claim(limit=1)
    assert not services.job_time_out(job_id=job.id)
    with time_machine.travel(job.expires_at + timedelta(milliseconds=1)):
        assert services.job_time_out(job_id=job.id)
    assert Job.objects.get(id=job.id).state == "timeout"


def test_a_claimed_job_is_not_claimed_again_by_another_worker():
    jobs = [make_pending_job(provider="local") for _ in range(3)]
    claimed = claim("w1", limit=2)
    rest = claim("w2", limit=5)
    assert len(claimed) == 2 and len(rest) == 1
    assert {job.id for job in jobs} == {item.id for item in claimed + rest}


def test_the_oldest_pending_jobs_are_claimed_first_and_expired_ones_are_skipped():
    now = timezone.now()
    expired = make_pending_job(provider="local", created_at=now - timedelta(seconds=60), expires_in=48)
    older = make_pending_job(provider="local", created_at=now - timedelta(seconds=2))
    newer = make_pending_job(provider="local", created_at=now - timedelta(seconds=1))
    assert [item.id for item in claim(limit=1)] == [older.id]
    assert [item.id for item in claim(limit=5)] == [newer.id]
    assert Job.objects.get(id=expired.id).state == "pending", "left for cleanup to time out"


def test_a_job_with_less_time_left_than_its_provider_needs_is_not_started():
    now = timezone.now()
    hopeless = make_pending_job(provider="gemini", created_at=now - timedelta(seconds=44), expires_in=48)
    in_time = make_pending_job(provider="gemini", created_at=now - timedelta(seconds=1), expires_in=48)
    local = make_pending_job(provider="local", created_at=now - timedelta(seconds=46), expires_in=48)
    claimed = services.jobs_claim(worker="w", limit=10, lease=LEASE, min_remaining={"gemini": 5.0})
    assert {item.id for item in claimed} == {in_time.id, local.id}, "4 s left < the 5 s gemini needs"
    assert Job.objects.get(id=hopeless.id).state == "pending", "it times out at its deadline, unpaid"


def test_the_time_a_provider_needs_is_what_only_its_fastest_tenth_of_recent_calls_beat():
    from jobs.worker import ProviderLatency

    latency = ProviderLatency()
    for seconds in range(1, 10):
        latency.record("gemini", float(seconds))
    assert latency.min_remaining() == {}, "too few calls to judge: every job is started"
    for seconds in range(10, 21):
        latency.record("gemini", float(seconds))
    assert latency.min_remaining() == {"gemini": 3.0}


def test_a_capped_provider_gets_only_the_room_left_under_its_cap():
    set_provider_caps({"gemini": 2})
    gemini = [make_pending_job(provider="gemini") for _ in range(4)]
    local = [make_pending_job(provider="local") for _ in range(3)]
    claimed = claim(limit=10)
    assert {item.id for item in claimed} == {job.id for job in gemini[:2] + local}, (
        "the two oldest gemini jobs, and every local job: a provider missing from the caps has none"
    )
    assert claim(limit=10) == []
    services.job_finalize(job_id=gemini[0].id, outcome=DONE)
    assert [item.id for item in claim(limit=10)] == [gemini[2].id], "one call finished, one place"


def test_staff_changing_a_cap_applies_to_the_next_claim():
    set_provider_caps({"gemini": 1})
    jobs = [make_pending_job(provider="gemini") for _ in range(4)]
    assert len(claim()) == 1
    set_provider_caps({"gemini": 3})
    assert len(claim()) == 2
    assert processing_count("gemini") == 3
    set_provider_caps({"gemini": 1})
    services.job_finalize(job_id=jobs[0].id, outcome=DONE)
    assert claim() == [], "two calls still in flight against a cap now of one"
    set_provider_caps({})
    assert [item.id for item in claim()] == [jobs[3].id], "a provider taken off the list has no cap"


def test_a_lapsed_lease_is_requeued_by_the_orm_sweep_and_renewal_reports_the_claim_lost():
    job = make_pending_job(provider="local")
    first = claim("w1", limit=1)[0]
    assert services.jobs_renew_leases(worker="w1", claims={job.id: first.claim_count}, lease=LEASE) == {
        job.id
    }
    with time_machine.travel(timezone.now() + LEASE + timedelta(seconds=1)):
        assert services.jobs_recover_stale() == (1, 0)
    row = Job.objects.get(id=job.id)
    assert (row.state, row.claimed_by, row.lease_expires_at) == ("pending", "", None)

    second = claim("w1", limit=1)[0]
    assert (
        services.jobs_renew_leases(worker="w1", claims={job.id: first.claim_count}, lease=LEASE) == set()
    ), "the same worker's newer claim does not keep the older one alive"
    assert services.jobs_renew_leases(worker="w2", claims={job.id: second.claim_count}, lease=LEASE) == set()
    assert services.jobs_renew_leases(worker="w1", claims={job.id: second.claim_count}, lease=LEASE) == {
        job.id
    }


def test_recovery_times_out_live_jobs_past_their_deadline():
    job = make_pending_job(provider="local", expires_in=5)
    claim(limit=1)
    with time_machine.travel(job.expires_at + timedelta(seconds=1)):
        assert services.jobs_recover_stale() == (0, 1)
    assert Job.objects.get(id=job.id).state == "timeout"


def test_claim_and_finalize_statements_reference_only_existing_columns():
    # EXPLAIN plans a statement without running it: PostgreSQL resolves every table and column name.
    now = timezone.now()
    conditions = (
        f"AND {services._EXPIRES_AT} > %(now)s AND {services._CLAIMED_BY} = %(claimed_by)s"
        f" AND {services._CLAIM_COUNT} = %(claim_count)s"
    )
    statements: list[tuple[str, dict[str, Any]]] = [
        (services._PROVIDER_CAP_LOCKS_SQL, {"lock_class": services.PROVIDER_CAP_LOCK_CLASS}),
        (
            services._CLAIM_SQL,
            {"now": now, "lease": now, "worker": "w", "limit": 1, "scan": 4, "slow_providers": ["gemini"],
             "slow_seconds": [5.0]},
        ),
        (
            services._FINALIZE_SQL.format(conditions=conditions),
            {
                "id": uuid.uuid4(), "id_text": "x", "state": "failed", "sources": ["processing"], "now": now,
                "failure_reason": "", "failure_message": "", "provider_calls": 0, "has_result": False,
                "result_path": "", "result_mime_type": "", "result_size_bytes": None, "result_sha256": "",
                "result_thumbnail_path": "", "input_thumbnail_path": "", "keep_input": False, "details": "{}",
                "channel": "c", "created_channel": "c", "claimed_by": "w", "claim_count": 1, "buckets": [1.0, 2.0],
                "share_token": "", "attempts": "[]", "answered_by": "",
            },
        ),
        (
            services._INPUT_THUMBNAIL_SQL,
            {"id": uuid.uuid4(), "path": "p", "final": ["succeeded"], "claimed_by": "w", "claim_count": 1, "now": now},
        ),
    ]  # fmt: skip
    with connection.cursor() as cursor:
        for statement, params in statements:
            cursor.execute(f"EXPLAIN {statement}", params)
            assert cursor.fetchall()


def test_a_renamed_field_fails_when_the_statement_is_built():
    with pytest.raises(FieldDoesNotExist):
        column(Job, "lease_until")
    with pytest.raises(FieldDoesNotExist):
        sql("SELECT {job.claimed_by_worker} FROM {job}", job=Job)
    assert sql("SELECT {job.slot} FROM {job}", job=Job) == "SELECT slot_id FROM jobs_job"


@pytest.mark.django_db(transaction=True)
def test_claimers_racing_each_other_never_push_a_provider_past_its_cap(studio):
    set_provider_caps({"gemini": 3})
    for _ in range(40):
        make_pending_job(provider="gemini")
    claimers = 8
    start = threading.Barrier(claimers)

    def claim_in_own_connection(number: int) -> int:
        try:
            start.wait(timeout=10)
            return len(services.jobs_claim(worker=f"w{number}", limit=2, lease=LEASE))
        finally:
            connection.close()

    for _round in range(5):
        with ThreadPoolExecutor(max_workers=claimers) as pool:
            claimed = sum(pool.map(claim_in_own_connection, range(claimers)))
        assert claimed == 3
        assert processing_count("gemini") == 3
        for job_id in Job.objects.filter(state="processing").values_list("id", flat=True):
            services.job_finalize(job_id=job_id, outcome=DONE)


def test_the_create_statement_fills_every_column_the_database_requires():
    """A new NOT NULL column without a database default must be added to job_create's INSERTs."""
    from media.models import MediaObject
    from stats.models import ProcessingLogEntry

    for model in (Job, MediaObject, ProcessingLogEntry):
        table = model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " AND is_nullable = 'NO' AND column_default IS NULL",
                [table],
            )
            required = {row[0] for row in cursor.fetchall()}
        listed = services._CREATE_SQL.split(f"INSERT INTO {table} (", 1)[1].split(")", 1)[0]
        named = {name.strip() for name in listed.split(",")}
        assert required - named <= {"id"} if model is ProcessingLogEntry else required <= named, table


def test_the_hot_path_reads_reference_only_existing_columns():
    from jobs.ingest import _OUTCOME_SQL
    from slots.selectors import _SLOT_CONTEXT_SQL
    from stats.selectors import _PASSWORD_GUESSES_SQL

    now = timezone.now()
    guesses = {"client_ip": "127.0.0.1", "since": now, "client_limit": 1, "all_limit": 1}
    with connection.cursor() as cursor:
        statements: list[tuple[str, Any]] = [
            (_SLOT_CONTEXT_SQL, ["slot-001"]),
            (_OUTCOME_SQL, [uuid.uuid4()]),
            (_PASSWORD_GUESSES_SQL, guesses),
        ]
        for statement, params in statements:
            cursor.execute(f"EXPLAIN {statement}", params)
            assert cursor.fetchall()
