"""``manage.py configure_settings [--ingest-password X] [--sync-seconds N] [--result-retention-hours H]
[--provider-key NAME=KEY]`` — global settings for ops and tests, validated as the admin validates."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.kinds import ProviderKind
from providers.services import provider_key_set
from slots import services
from slots.management.commands.configure_slot import _format_validation_error


class Command(BaseCommand):
    help = "Change global settings: ingest password, sync window, result retention, provider API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ingest-password")
        parser.add_argument("--sync-seconds", type=int)
        parser.add_argument("--result-retention-hours", type=int)
        parser.add_argument("--public-link-ttl-seconds", type=int)
        parser.add_argument(
            "--provider-key",
            action="append",
            default=[],
            metavar="NAME=KEY",
            help=f"provider API key, NAME one of {', '.join(ProviderKind.values)} (repeatable; empty KEY removes)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        keys: list[tuple[str, str]] = []
        for item in options["provider_key"]:
            name, separator, key = item.partition("=")
            if not separator or name not in ProviderKind.values:
                raise CommandError(
                    f"--provider-key must be NAME=KEY with NAME one of {', '.join(ProviderKind.values)}"
                )
            keys.append((name, key))
        try:
            studio = services.studio_settings_update(
                change=services.StudioSettingsChange(
                    sync_response_seconds=options["sync_seconds"],
                    result_retention_hours=options["result_retention_hours"],
                    public_link_ttl_seconds=options["public_link_ttl_seconds"],
                )
            )
            if options["ingest_password"] is not None:
                studio = services.ingest_password_set(password=options["ingest_password"])
        except ValidationError as error:
            raise CommandError(_format_validation_error(error)) from error
        for name, key in keys:
            provider_key_set(provider=name, api_key=key)
            self.stdout.write(f"provider key {name}: {'configured' if key else 'removed'}")
        password_state = (
            "configured" if studio.ingest_password_configured else "not configured (ingest closed)"
        )
        self.stdout.write(
            f"sync window {studio.sync_response_seconds} s, result retention {studio.result_retention_hours} h, "
            f"public link TTL {studio.public_link_ttl_seconds} s, ingest password {password_state}"
        )
