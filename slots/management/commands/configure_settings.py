"""``manage.py configure_settings [--ingest-password X] [--sync-seconds N] [--result-retention-hours H]
[--public-link-ttl-seconds S] [--provider-key NAME=KEY] [--provider-cap NAME=N]`` — global settings for
ops and tests, validated as the admin validates."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.kinds import NETWORK_PROVIDER_KINDS, ProviderKind
from providers.services import provider_key_set
from slots import services
from slots.management.commands.configure_slot import _format_validation_error


class Command(BaseCommand):
    help = (
        "Change global settings: ingest password, sync window, result retention, provider API keys, "
        "provider concurrency caps."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ingest-password")
        parser.add_argument("--sync-seconds", type=int)
        parser.add_argument("--result-retention-hours", type=int)
        parser.add_argument("--public-link-ttl-seconds", type=int)
        parser.add_argument(
            "--keep-late-results",
            choices=["on", "off"],
            help="keep a provider's image that arrives after the window (download, gallery)",
        )
        parser.add_argument(
            "--late-result-grace-seconds", type=int, help="how long a call may run on past the window"
        )
        parser.add_argument(
            "--provider-key",
            action="append",
            default=[],
            metavar="NAME=KEY",
            help=f"provider API key, NAME one of {', '.join(ProviderKind.values)} (repeatable; empty KEY removes)",
        )
        parser.add_argument(
            "--provider-cap",
            action="append",
            default=[],
            metavar="NAME=N",
            help=(
                f"provider calls in flight at once across all workers, NAME one of "
                f"{', '.join(NETWORK_PROVIDER_KINDS)}, N {services.PROVIDER_CAP_MIN}–{services.PROVIDER_CAP_MAX} "
                "(repeatable; providers not named keep their cap)"
            ),
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
        caps = self.parse_provider_caps(options["provider_cap"])
        try:
            studio = services.studio_settings_update(
                change=services.StudioSettingsChange(
                    sync_response_seconds=options["sync_seconds"],
                    result_retention_hours=options["result_retention_hours"],
                    public_link_ttl_seconds=options["public_link_ttl_seconds"],
                    provider_concurrency=caps,
                    keep_late_results=None
                    if options["keep_late_results"] is None
                    else options["keep_late_results"] == "on",
                    late_result_grace_seconds=options["late_result_grace_seconds"],
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
        caps_state = ", ".join(f"{name}={cap}" for name, cap in sorted(studio.provider_concurrency.items()))
        self.stdout.write(
            f"sync window {studio.sync_response_seconds} s, result retention {studio.result_retention_hours} h, "
            f"public link TTL {studio.public_link_ttl_seconds} s, ingest password {password_state}, "
            f"provider caps {caps_state or 'none'}, late results "
            f"{f'kept {studio.late_result_grace_seconds} s' if studio.keep_late_results else 'not kept'}"
        )

    def parse_provider_caps(self, items: list[str]) -> dict[str, int]:
        caps: dict[str, int] = {}
        for item in items:
            name, separator, value = item.partition("=")
            if not separator or name not in NETWORK_PROVIDER_KINDS or not value.strip().isdigit():
                raise CommandError(
                    f"--provider-cap must be NAME=N with NAME one of {', '.join(NETWORK_PROVIDER_KINDS)} "
                    "and N a whole number"
                )
            caps[name] = int(value)
        return caps
