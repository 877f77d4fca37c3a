"""``manage.py write_spec [--check]`` — regenerate ``spec/openapi.json`` and ``spec/errors.json``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from photochanger.contracts import SPEC_DIR, rendered_contracts


class Command(BaseCommand):
    help = "Write the generated contract files under spec/ (or, with --check, fail when they are stale)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        stale = []
        for name, content in rendered_contracts().items():
            path = SPEC_DIR / name
            current = path.read_text() if path.exists() else ""
            if current == content:
                continue
            stale.append(name)
            if not options["check"]:
                path.write_text(content)
                self.stdout.write(f"wrote spec/{name}")
        if options["check"] and stale:
            raise CommandError(f"stale: {', '.join('spec/' + n for n in stale)}; run manage.py write_spec")
        if not stale:
            self.stdout.write("spec/ is up to date")
