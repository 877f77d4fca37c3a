"""``manage.py cleanup [--dry-run]`` — run from cron (e.g. every 5 minutes).

Times out jobs past their deadline, requeues jobs whose worker died, deletes inputs and temporary links
that outlived their job, deletes results past their retention (their URL then answers 410). Prints a
one-line summary. Safe to run twice at once (advisory lock; idempotent steps).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs.cleanup import cleanup_run


class Command(BaseCommand):
    help = "Remove expired inputs, links and results; time out overdue jobs. Prints what it removed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be removed; change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = cleanup_run(dry_run=options["dry_run"])
        prefix = "(dry run) " if options["dry_run"] else ""
        self.stdout.write(prefix + report.summary())
