"""manage.py cleanup: overdue jobs, leftover inputs, expired results; idempotent and locked."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from jobs.cleanup import ADVISORY_LOCK_KEY
from jobs.models import Job
from media import storage
from media.models import MediaObject

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def make_job(**fields):
    now = timezone.now()
    defaults = {
        "slot_id": "slot-001",
        "provider": "local",
        "created_at": now,
        "expires_at": now + timedelta(seconds=48),
    }
    return Job.objects.create(**{**defaults, **fields})


def run_cleanup(*args):
    out = StringIO()
    call_command("cleanup", *args, stdout=out)
    return out.getvalue()


def test_cleanup_times_out_overdue_jobs_and_removes_their_inputs(media_root):
    past = timezone.now() - timedelta(minutes=5)
    job = make_job(created_at=past, expires_at=past + timedelta(seconds=48))
    storage.write_new("inputs/x.jpg", b"\xff\xd8\xff data")
    MediaObject.objects.create(
        job=job,
        kind="input",
        path="inputs/x.jpg",
        mime_type="image/jpeg",
        created_at=past,
        expires_at=job.expires_at,
    )

    summary = run_cleanup()
    assert "timed_out=1" in summary
    assert "files_removed=1" in summary
    job.refresh_from_db()
    assert job.state == "timeout"
    assert not (media_root / "inputs" / "x.jpg").exists()


def test_cleanup_deletes_expired_results_and_keeps_live_ones(media_root):
    now = timezone.now()
    expired = make_job(
        state="succeeded", result_path="results/old.png", result_expires_at=now - timedelta(minutes=1)
    )
    live = make_job(
        state="succeeded", result_path="results/new.png", result_expires_at=now + timedelta(hours=1)
    )
    storage.write_new("results/old.png", b"old")
    storage.write_new("results/new.png", b"new")

    assert "(dry run)" in run_cleanup("--dry-run")
    assert (media_root / "results" / "old.png").exists(), "dry run changes nothing"

    assert "results removed=1" in run_cleanup()
    assert not (media_root / "results" / "old.png").exists()
    assert (media_root / "results" / "new.png").exists()
    expired.refresh_from_db()
    live.refresh_from_db()
    assert expired.result_deleted_at is not None and live.result_deleted_at is None
    assert "results removed=0" in run_cleanup(), "a second run finds nothing more"


def test_cleanup_skips_when_another_run_holds_the_lock(media_root):
    import psycopg

    from photochanger.db import connection_kwargs

    with psycopg.connect(autocommit=True, **connection_kwargs()) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        other_pid = other.info.backend_pid
        assert "another cleanup is running" in run_cleanup()
    with connection.cursor() as cursor:
        # The other session's backend may still be exiting (and releasing its lock): only ours count.
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> %s", [other_pid])
        assert cursor.fetchone()[0] == 0
