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


def test_cleanup_deletes_a_results_thumbnail_with_the_result_and_a_second_run_removes_nothing(media_root):
    now = timezone.now()
    job = make_job(
        state="succeeded",
        finalized_at=now - timedelta(hours=73),
        result_path="results/old.png",
        result_thumbnail_path="thumbnails/old-result.jpg",
        result_expires_at=now - timedelta(hours=1),
    )
    storage.write_new("results/old.png", b"old")
    storage.write_new("thumbnails/old-result.jpg", b"thumb")

    assert "thumbnails removed=1" in run_cleanup("--dry-run")
    assert (media_root / "thumbnails" / "old-result.jpg").exists(), "dry run changes nothing"

    summary = run_cleanup()
    assert "results removed=1" in summary and "thumbnails removed=1" in summary
    assert not (media_root / "thumbnails" / "old-result.jpg").exists()
    job.refresh_from_db()
    assert (job.result_thumbnail_path, job.result_deleted_at is not None) == ("", True)
    assert "thumbnails removed=0" in run_cleanup(), "a second run finds nothing more (and makes nothing)"
    assert not any((media_root / "thumbnails").iterdir())


def test_cleanup_deletes_input_thumbnails_of_final_jobs_once_the_result_retention_has_passed(media_root):
    from slots.services import studio_settings_get

    retention = timedelta(hours=studio_settings_get().result_retention_hours)
    now = timezone.now()
    old_failure = make_job(
        state="failed",
        finalized_at=now - retention - timedelta(minutes=1),
        input_thumbnail_path="thumbnails/a.jpg",
    )
    recent_failure = make_job(
        state="failed",
        finalized_at=now - retention + timedelta(hours=1),
        input_thumbnail_path="thumbnails/b.jpg",
    )
    old_success = make_job(
        state="succeeded",
        finalized_at=now - retention - timedelta(minutes=1),
        result_path="results/c.png",
        result_expires_at=now - timedelta(minutes=1),
        input_thumbnail_path="thumbnails/c-input.jpg",
    )
    for name in ("a.jpg", "b.jpg", "c-input.jpg"):
        storage.write_new(f"thumbnails/{name}", b"thumb")

    assert "thumbnails removed=2" in run_cleanup()

    assert sorted(path.name for path in (media_root / "thumbnails").iterdir()) == ["b.jpg"]
    paths = dict(Job.objects.values_list("id", "input_thumbnail_path"))
    assert paths == {old_failure.id: "", recent_failure.id: "thumbnails/b.jpg", old_success.id: ""}
    assert "thumbnails removed=0" in run_cleanup()


def _advisory_lock_holders() -> list[int]:
    """Backend pids holding the cleanup lock (a bigint key shows as classid = high, objid = low half)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            [ADVISORY_LOCK_KEY >> 32, ADVISORY_LOCK_KEY & 0xFFFFFFFF],
        )
        return [row[0] for row in cursor.fetchall()]


def test_cleanup_skips_when_another_run_holds_the_lock(media_root):
    import psycopg

    from photochanger.db import connection_kwargs

    with psycopg.connect(autocommit=True, **connection_kwargs()) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        assert "another cleanup is running" in run_cleanup()
        assert _advisory_lock_holders() == [other.info.backend_pid], "the skipped run took no lock"
        # pg_advisory_unlock returns once the lock is released, unlike closing the connection (the
        # server drops a closed session's locks whenever its backend gets round to exiting).
        other.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        summary = run_cleanup()
    assert "another cleanup is running" not in summary, "the lock is free again once the other run ends"
    assert _advisory_lock_holders() == [], "a finished run gives its lock back"


def test_cleanup_removes_old_files_no_row_keeps_and_leaves_recorded_recent_and_foreign_ones(media_root):
    import os
    import uuid

    now = timezone.now()
    recorded = make_job(state="succeeded", result_expires_at=now + timedelta(hours=72))
    recorded.result_path = f"results/{recorded.id}-aa.png"
    recorded.input_thumbnail_path = f"thumbnails/{recorded.id}-input-aa.jpg"
    recorded.save()
    live = make_job(state="processing")
    MediaObject.objects.create(
        job=live, kind="input", path=f"inputs/{live.id}.jpg", mime_type="image/jpeg",
        created_at=now, expires_at=live.expires_at,
    )  # fmt: skip
    released = make_job(state="succeeded")
    MediaObject.objects.create(
        job=released, kind="input", path=f"inputs/{released.id}.jpg", mime_type="image/jpeg",
        created_at=now, expires_at=released.expires_at, deleted_at=now,
    )  # fmt: skip
    kept = [
        recorded.result_path,
        recorded.input_thumbnail_path,
        f"inputs/{live.id}.jpg",
        "inputs/not-ours.jpg",  # a name no job gave: not ours to judge
    ]
    orphans = [
        f"results/{uuid.uuid4()}-bb.png",  # a worker killed between storing a result and its finalize
        f"thumbnails/{recorded.id}-input-bb.jpg",  # the thumbnail of an earlier, killed claim
        f"inputs/{released.id}.jpg",  # released by its finalize, the process killed before deleting it
        f"inputs/{uuid.uuid4()}.jpg",  # a web process killed between storing the photo and the job
    ]
    twenty_minutes_ago = (now - timedelta(minutes=20)).timestamp()
    for path in kept + orphans:
        storage.write_new(path, b"bytes")
        os.utime(media_root / path, (twenty_minutes_ago, twenty_minutes_ago))
    recent_orphan = f"results/{uuid.uuid4()}-cc.png"  # may still be recorded by a live job
    storage.write_new(recent_orphan, b"bytes")

    assert "orphan files removed=4" in run_cleanup("--dry-run")
    assert all(storage.exists(path) for path in orphans), "dry run changes nothing"

    assert "orphan files removed=4" in run_cleanup()
    assert [path for path in orphans if storage.exists(path)] == []
    assert all(storage.exists(path) for path in [*kept, recent_orphan])
    assert "orphan files removed=0" in run_cleanup()
