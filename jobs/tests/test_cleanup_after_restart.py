"""Cron's ``cleanup`` right after PostgreSQL restarted leaves lapsed leases to the workers.

While the server was down no worker could renew its leases, so every job in a live worker's hands looks
abandoned the moment the server is back. ``cleanup`` requeues lapsed leases only once the server has
been up for two leases; until then the workers renew their own (and requeue only dead workers' jobs),
so no job goes to the provider twice because of the restart. Runs against a server of the test's own.
"""

from __future__ import annotations

import time

from jobs.tests.separate_postgres import separate_postgres

MAKE_JOB_WITH_A_LAPSED_LEASE = """
from datetime import timedelta
from django.utils import timezone
from jobs.models import Job
now = timezone.now()
Job.objects.create(
    slot_id="slot-001", provider="local", state="processing", claimed_by="live-worker", claim_count=1,
    created_at=now, expires_at=now + timedelta(seconds=48), lease_expires_at=now - timedelta(seconds=1),
)
"""
JOB_STATE = "SELECT state, claim_count FROM jobs_job"


def test_cleanup_just_after_a_restart_requeues_no_lapsed_lease_and_does_once_the_server_has_been_up() -> None:
    lease = {"WORKER_LEASE_SECONDS": "1"}
    with separate_postgres() as database:
        database.manage("shell", "-c", MAKE_JOB_WITH_A_LAPSED_LEASE)
        database.stop()
        database.start_again()

        summary = database.manage("cleanup", env=lease)
        assert "requeued=0" in summary, summary
        assert database.query(JOB_STATE) == [("processing", 1)], "still the live worker's to renew"

        time.sleep(2.5)  # the server has now been up for more than two 1 s leases
        summary = database.manage("cleanup", env=lease)
        assert "requeued=1" in summary, summary
        assert database.query(JOB_STATE) == [("pending", 1)], "a lease lapsed that long is a dead worker's"
