"""``manage.py configure_slot <slot_id> --provider P [--operation O] [--settings JSON] [--active|--inactive]
[--share-qr off|bottom-right|bottom-left] [--fallback-slot slot-009|none]``

Scripted slot set-up for ops and tests, validated exactly as the admin validates
(``slots.services.slot_update``, against the templates bound now).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.kinds import ProviderKind
from slots import services
from slots.models import ShareQrCorner, Slot


class Command(BaseCommand):
    help = "Configure one of the 15 slots (provider, operation, settings, active flag)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Our --settings (provider settings JSON) replaces Django's --settings (settings module);
        # manage.py renames it before Django's own pre-parse sees it (see manage.py).
        parser = super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)
        parser.set_defaults(settings=None)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slot_id")
        parser.add_argument("--provider", choices=ProviderKind.values)
        parser.add_argument("--operation")
        parser.add_argument(
            "--settings",
            "--slot-settings",
            dest="slot_settings",
            help="provider settings as a JSON object (replaces the current ones)",
        )
        parser.add_argument("--display-name")
        parser.add_argument("--size-limit-mb", type=int)
        parser.add_argument(
            "--share-qr",
            choices=ShareQrCorner.values,
            help="stamp the QR code of the guest's share page onto this corner of returned images",
        )
        parser.add_argument(
            "--fallback-slot",
            metavar="SLOT_ID",
            help="the slot whose provider and settings take the photo when this slot's provider fails "
            "with time left ('none' removes it)",
        )
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--active", dest="active", action="store_true", default=None)
        state.add_argument("--inactive", dest="active", action="store_false")

    def handle(self, *args: Any, **options: Any) -> None:
        slot = Slot.objects.filter(id=options["slot_id"]).first()
        if slot is None:
            raise CommandError(f"No slot {options['slot_id']!r}; slots are slot-001 … slot-015.")
        fields: dict[str, Any] = {}
        if options["provider"] is not None:
            fields["provider"] = options["provider"]
        if options["operation"] is not None:
            fields["operation"] = options["operation"]
        if options["slot_settings"] is not None:
            try:
                fields["settings"] = json.loads(options["slot_settings"])
            except json.JSONDecodeError as error:
                raise CommandError(f"--settings is not valid JSON: {error}") from error
            if not isinstance(fields["settings"], dict):
                raise CommandError("--settings must be a JSON object.")
        if options["display_name"] is not None:
            fields["display_name"] = options["display_name"]
        if options["size_limit_mb"] is not None:
            fields["size_limit_mb"] = options["size_limit_mb"]
        if options["active"] is not None:
            fields["is_active"] = options["active"]
        if options["share_qr"] is not None:
            fields["share_qr"] = options["share_qr"]
        if options["fallback_slot"] is not None:
            fields["fallback_slot"] = _fallback_slot(options["fallback_slot"])
        try:
            slot = services.slot_update(slot=slot, fields=fields)
        except ValidationError as error:
            raise CommandError(_format_validation_error(error)) from error
        state = "active" if slot.is_active else "inactive"
        self.stdout.write(
            f"{slot.id}: provider={slot.provider} operation={slot.operation or '-'} {state} "
            f"share_qr={slot.share_qr} fallback={slot.fallback_slot_id or '-'} (version {slot.version})"
        )


def _fallback_slot(slot_id: str) -> Slot | None:
    if slot_id.lower() in {"none", ""}:
        return None
    fallback = Slot.objects.filter(id=slot_id).first()
    if fallback is None:
        raise CommandError(f"No slot {slot_id!r} for --fallback-slot; slots are slot-001 … slot-015.")
    return fallback


def _format_validation_error(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)
