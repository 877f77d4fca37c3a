"""Create the first admin and the ingest password on a fresh install, printing each once.

Idempotent: an existing superuser or configured ingest password is left alone. Passwords come from
``--admin-password`` / ``INGEST_PASSWORD`` when given, otherwise they are generated.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from slots import services


class Command(BaseCommand):
    help = "Create the first superuser and the ingest password if none exist (printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", default="")
        parser.add_argument("--ingest-password", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        services.slots_ensure_static()
        if not user_model.objects.filter(is_superuser=True).exists():
            password = options["admin_password"] or secrets.token_urlsafe(12)
            user_model.objects.create_superuser(
                username=options["admin_username"], email="", password=password
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created admin user '{options['admin_username']}' with password: {password}"
                )
            )
        else:
            self.stdout.write("Admin user already exists (unchanged).")

        studio = services.studio_settings_get()
        if not studio.ingest_password_configured:
            ingest_password = (
                options["ingest_password"] or settings.INGEST_PASSWORD or secrets.token_urlsafe(9)
            )
            services.ingest_password_set(password=ingest_password)
            self.stdout.write(self.style.SUCCESS(f"Ingest password set to: {ingest_password}"))
        else:
            self.stdout.write("Ingest password already configured (unchanged; rotate it in the admin).")
