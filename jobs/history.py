"""Old history out of the database: final jobs older than the history retention (prune_history).

Live jobs are never touched. A pruned job's files (a result whose retention had not run out, its
thumbnails) are removed with it; its media rows go by cascade.
"""

from __future__ import annotations

from datetime import datetime

from jobs.models import Job
from jobs.states import FINAL_STATES
from media import storage


def jobs_prune(*, before: datetime, batch: int = 5000, dry_run: bool = False) -> tuple[int, int]:
    """Delete final jobs received before ``before``, ``batch`` at a time, with their stored result and
    thumbnails; returns (jobs, result files) removed."""
    old = Job.objects.filter(created_at__lt=before, state__in=list(FINAL_STATES))
    if dry_run:
        return old.count(), 0
    jobs = files = 0
    while True:
        rows = list(
            old.order_by("created_at").values_list(
                "id", "result_path", "result_deleted_at", "input_thumbnail_path", "result_thumbnail_path"
            )[:batch]
        )
        if not rows:
            return jobs, files
        for _job_id, result_path, result_deleted_at, *thumbnail_paths in rows:
            if result_path and result_deleted_at is None and storage.delete(result_path):
                files += 1
            for thumbnail_path in thumbnail_paths:
                # Normally gone already (cleanup, after the result retention); not when that outlasts
                # the history kept.
                storage.delete(thumbnail_path)
        Job.objects.filter(id__in=[row[0] for row in rows]).delete()
        jobs += len(rows)
