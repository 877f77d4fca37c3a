"""On a fresh install, make slot-001 work offline with the local provider (sepia), so a newcomer can
post a photo right away. Leaves slot-001 alone once anybody has configured it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from slots import services
from slots.models import Slot


class Command(BaseCommand):
    help = "Configure slot-001 with the local provider if it was never configured."

    def handle(self, *args: Any, **options: Any) -> None:
        slot = Slot.objects.get(id="slot-001")
        if slot.version != 1 or slot.is_active:
            self.stdout.write("slot-001 already configured (unchanged).")
            return
        services.slot_update(
            slot=slot,
            fields={
                "display_name": "Demo: sepia (local, offline)",
                "provider": "local",
                "operation": "sepia",
                "settings": {"output_format": "jpeg", "quality": 90},
                "is_active": True,
            },
        )
        self.stdout.write(self.style.SUCCESS("slot-001 configured: local provider, sepia, active."))
