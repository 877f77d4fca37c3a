from datetime import UTC, datetime, timedelta

import pytest

from photochanger import deadlines

CREATED = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def test_job_expires_at_is_created_plus_sync_window():
    assert deadlines.job_expires_at(
        created_at=CREATED, sync_response=timedelta(seconds=48)
    ) == CREATED + timedelta(seconds=48)


def test_artifact_expiry_is_capped_by_the_job_deadline():
    job_deadline = CREATED + timedelta(seconds=48)
    assert (
        deadlines.artifact_expires_at(
            created_at=CREATED, job_expires_at=job_deadline, limit=timedelta(minutes=5)
        )
        == job_deadline
    )


def test_artifact_expiry_is_created_plus_limit_when_shorter_than_the_job():
    job_deadline = CREATED + timedelta(seconds=48)
    assert deadlines.artifact_expires_at(
        created_at=CREATED, job_expires_at=job_deadline, limit=timedelta(seconds=20)
    ) == CREATED + timedelta(seconds=20)


def test_result_expires_at_is_finalized_plus_retention():
    finalized = CREATED + timedelta(seconds=7)
    assert deadlines.result_expires_at(
        finalized_at=finalized, retention=timedelta(hours=72)
    ) == finalized + timedelta(hours=72)


def test_remaining_seconds_counts_down_and_never_goes_negative():
    deadline = CREATED + timedelta(seconds=10)
    assert deadlines.remaining_seconds(deadline=deadline, now=CREATED + timedelta(seconds=4)) == 6.0
    assert deadlines.remaining_seconds(deadline=deadline, now=CREATED + timedelta(seconds=11)) == 0.0


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        deadlines.job_expires_at(created_at=datetime(2026, 1, 1), sync_response=timedelta(seconds=48))


def test_non_positive_windows_are_refused():
    with pytest.raises(ValueError):
        deadlines.job_expires_at(created_at=CREATED, sync_response=timedelta(0))
    with pytest.raises(ValueError):
        deadlines.result_expires_at(finalized_at=CREATED, retention=timedelta(seconds=-1))
