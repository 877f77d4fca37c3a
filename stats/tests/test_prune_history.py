"""manage.py prune_history: old final jobs and log rows go, in batches; live jobs and recent rows stay."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from jobs.models import Job
from media import storage
from stats.management.commands.prune_history import ADVISORY_LOCK_KEY
from stats.models import LogEvent, ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)


def make_job(state: str, result_path: str = "") -> Job:
    now = timezone.now()
    return Job.objects.create(
        id=uuid.uuid4(),
        slot_id="slot-001",
        provider="local",
        state=state,
        created_at=now,
        expires_at=now + timedelta(seconds=48),
        result_path=result_path,
    )


def log_row() -> ProcessingLogEntry:
    return ProcessingLogEntry.objects.create(
        created_at=timezone.now(), event=LogEvent.INGEST_REJECTED, slot_id="slot-001", failure_reason="x"
    )


def prune(*arguments: str) -> str:
    out = io.StringIO()
    call_command("prune_history", *arguments, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def a_season(studio, media_root):
    """Jobs and log rows from 100 days ago, then some from today."""
    with time_machine.travel(timezone.now() - timedelta(days=100), tick=False):
        storage.write_new("results/old.jpg", b"\xff\xd8\xff old result")
        old = [make_job("succeeded", "results/old.jpg"), make_job("failed"), make_job("timeout")]
        stuck = make_job("processing")  # live: never pruned, whatever its age
        old_log = [log_row() for _ in range(3)]
    recent, recent_log = make_job("succeeded"), log_row()
    return {"old": old, "stuck": stuck, "old_log": old_log, "recent": recent, "recent_log": recent_log}


def test_history_older_than_the_retention_is_pruned_with_its_files(a_season, media_root):
    summary = prune()
    assert (
        "jobs removed=3" in summary
        and "log rows removed=3" in summary
        and "result files removed=1" in summary
    )
    remaining = set(Job.objects.values_list("id", flat=True))
    assert remaining == {a_season["stuck"].id, a_season["recent"].id}
    assert list(ProcessingLogEntry.objects.values_list("id", flat=True)) == [a_season["recent_log"].id]
    assert not (media_root / "results" / "old.jpg").exists()


def test_the_studio_retention_and_older_than_decide_the_cut(a_season, studio):
    studio.history_retention_days = 365
    studio.save()
    assert "jobs removed=0" in prune(), "a year kept: nothing is old enough"
    assert "jobs removed=3" in prune("--older-than", "30d")


def test_a_dry_run_counts_and_deletes_nothing(a_season):
    summary = prune("--dry-run")
    assert summary.startswith("(dry run)") and "jobs removed=3" in summary
    assert Job.objects.count() == 5


def test_time_moving_on_makes_recent_history_old(a_season):
    prune()
    with time_machine.travel(timezone.now() + timedelta(days=91), tick=False):
        assert "jobs removed=1" in prune(), "today's succeeded job, 91 days later"
    assert list(Job.objects.values_list("id", flat=True)) == [a_season["stuck"].id]


def test_a_second_run_while_one_holds_the_lock_does_nothing(a_season):
    import psycopg

    from photochanger.db import connection_kwargs

    with psycopg.connect(autocommit=True, **connection_kwargs()) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        assert "another run" in prune()
        other.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    assert Job.objects.count() == 5
    assert connection.vendor == "postgresql"


def test_a_malformed_age_is_refused():
    with pytest.raises(CommandError):
        call_command("prune_history", "--older-than", "ninety days", stdout=io.StringIO())
