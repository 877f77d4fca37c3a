"""``manage.py prune_history [--older-than 90d] [--dry-run]`` — run from cron (e.g. daily).

Deletes final jobs and processing-log rows older than the history retention (Studio settings, default
90 days; ``--older-than`` overrides it: ``90d``, ``36h`` or a number of days), in batches. The
statistics of those days are gone with them. Prints a one-line summary. Safe to run twice at once: a
second run finds the advisory lock taken and does nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from jobs.history import jobs_prune
from photochanger.db import session_advisory_lock
from slots.services import studio_settings_get
from stats.services import log_entries_prune

ADVISORY_LOCK_KEY = 0x50525F484953  # "PR_HIS"
_AGE = re.compile(r"^(?P<number>\d+)(?P<unit>[dh]?)$")


def parse_age(text: str) -> timedelta:
    match = _AGE.match(text.strip())
    if match is None or int(match["number"]) <= 0:
        raise CommandError(f"--older-than: expected e.g. 90d or 36h, got {text!r}")
    number = int(match["number"])
    return timedelta(hours=number) if match["unit"] == "h" else timedelta(days=number)


class Command(BaseCommand):
    help = "Delete final jobs and processing-log rows older than the history retention. Prints a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", help="e.g. 90d or 36h (default: the Studio settings' retention)")
        parser.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["older_than"]:
            age = parse_age(options["older_than"])
        else:
            age = timedelta(days=studio_settings_get().history_retention_days)
        before = timezone.now() - age
        dry_run = options["dry_run"]
        with session_advisory_lock(ADVISORY_LOCK_KEY) as acquired:
            if not acquired:
                self.stdout.write("prune_history: another run is going on; nothing done")
                return
            jobs, files = jobs_prune(before=before, dry_run=dry_run)
            log_rows = log_entries_prune(before=before, dry_run=dry_run)
        prefix = "(dry run) " if dry_run else ""
        self.stdout.write(
            f"{prefix}prune_history: before {before:%Y-%m-%d %H:%M} UTC: jobs removed={jobs} "
            f"log rows removed={log_rows} result files removed={files}"
        )
