"""Each slot's booth activity for the slot list: its last photo and today's images, timeouts and errors.

Staff test runs (``Job.is_test``) are left out: they are not the booth's. "Today" is the studio's day
(``TIME_ZONE``). Everything is computed in the one query that lists the slots (correlated subqueries, each
a range scan of ``job_slot_recent_idx``), never a query per row.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.models import Job
from jobs.states import JobState
from slots.models import Slot

# The annotations slots_with_activity adds, and the job state each of today's counts counts.
LAST_PHOTO_AT = "last_photo_at"
TODAY_COUNTS = {
    "images_today": JobState.SUCCEEDED,
    "timeouts_today": JobState.TIMEOUT,
    "errors_today": JobState.FAILED,
}


def studio_day(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start and end of the studio's day (``TIME_ZONE``) containing ``now``."""
    zone = timezone.get_default_timezone()
    today = timezone.localtime(now or timezone.now(), zone).date()
    start = datetime.combine(today, time.min, tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def slots_with_activity(slots: QuerySet[Slot], *, now: datetime | None = None) -> QuerySet[Slot]:
    """``slots`` annotated with ``last_photo_at`` (None before the first photo) and today's
    ``images_today``, ``timeouts_today``, ``errors_today`` (0 when none)."""
    start, end = studio_day(now)
    booth_jobs = Job.objects.filter(slot=OuterRef("pk"), is_test=False).order_by()
    last_photo = booth_jobs.order_by("-created_at").values("created_at")[:1]
    counts = {
        name: Coalesce(
            Subquery(
                booth_jobs.filter(state=state, created_at__gte=start, created_at__lt=end)
                .values("slot")
                .annotate(count=Count("pk"))
                .values("count"),
                output_field=IntegerField(),
            ),
            0,
        )
        for name, state in TODAY_COUNTS.items()
    }
    return slots.annotate(**{LAST_PHOTO_AT: Subquery(last_photo)}, **counts)
