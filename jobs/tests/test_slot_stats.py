"""The slot list's activity figures: last photo and today's images, timeouts and errors per slot."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from jobs.models import Job
from jobs.slot_stats import slots_with_activity
from slots.models import Slot

pytestmark = pytest.mark.django_db

# 10:00 in Moscow (UTC+3): the studio's day began at 21:00 UTC the day before.
NOW = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)


def job(slot_id: str, state: str, created_at: datetime, *, is_test: bool = False) -> Job:
    return Job.objects.create(
        slot_id=slot_id,
        provider="local",
        state=state,
        created_at=created_at,
        expires_at=created_at + timedelta(seconds=48),
        is_test=is_test,
    )


@time_machine.travel(NOW, tick=False)
def test_todays_counts_follow_the_studio_day_and_leave_out_test_runs(settings):
    settings.TIME_ZONE = "Europe/Moscow"
    job("slot-001", "succeeded", NOW - timedelta(hours=1))
    job("slot-001", "succeeded", datetime(2026, 6, 9, 21, 30, tzinfo=UTC))  # 00:30 in Moscow: today
    job("slot-001", "succeeded", datetime(2026, 6, 9, 20, 30, tzinfo=UTC))  # 23:30 yesterday in Moscow
    job("slot-001", "timeout", NOW - timedelta(minutes=5))
    job("slot-001", "failed", NOW - timedelta(minutes=4))
    job("slot-001", "cancelled", NOW - timedelta(minutes=3))
    job("slot-001", "succeeded", NOW - timedelta(minutes=1), is_test=True)
    job("slot-002", "failed", NOW - timedelta(days=2))

    slots: dict[str, Any] = {slot.id: slot for slot in slots_with_activity(Slot.objects.all())}

    first = slots["slot-001"]
    assert (first.images_today, first.timeouts_today, first.errors_today) == (2, 1, 1)
    assert first.last_photo_at == NOW - timedelta(minutes=3), "the last booth photo, not the test run"
    second = slots["slot-002"]
    assert (second.images_today, second.timeouts_today, second.errors_today) == (0, 0, 0)
    assert second.last_photo_at == NOW - timedelta(days=2)
    assert slots["slot-003"].last_photo_at is None


def test_every_slot_is_annotated_in_one_query(django_assert_num_queries):
    job("slot-004", "succeeded", datetime.now(UTC) - timedelta(minutes=1))
    with django_assert_num_queries(1):
        rows = [
            (slot.id, getattr(slot, "images_today"), getattr(slot, "last_photo_at"))  # noqa: B009
            for slot in slots_with_activity(Slot.objects.all())
        ]
    assert len(rows) == 15
