"""Reads of studio configuration for the hot path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection


@dataclass(frozen=True)
class SlotContext:
    """What one ingest needs to know about its slot and the studio, read in one query."""

    slot_id: str
    is_active: bool
    provider: str
    operation: str
    provider_settings: dict[str, Any]
    size_limit_mb: int
    templates: list[dict[str, str]]
    sync_response_seconds: int
    ingest_password_hash: str


_SLOT_CONTEXT_SQL = """
SELECT slot.id, slot.is_active, slot.provider, slot.operation, slot.settings, slot.size_limit_mb,
       studio.sync_response_seconds, studio.ingest_password_hash,
       COALESCE((
           SELECT json_agg(json_build_object('path', template.file, 'mime_type', template.mime_type,
                                             'role', binding.role, 'name', template.name)
                           ORDER BY binding.position, binding.id)
             FROM slots_slottemplatebinding AS binding
             JOIN slots_templatemedia AS template ON template.id = binding.template_id
            WHERE binding.slot_id = slot.id
       ), '[]'::json)
  FROM slots_slot AS slot
  LEFT JOIN slots_studiosettings AS studio ON studio.id = 1
 WHERE slot.id = %s
"""


def slot_context_get(*, slot_id: str) -> SlotContext | None:
    """The slot, its bound templates (in provider order) and the global settings; None if no such slot."""
    with connection.cursor() as cursor:
        cursor.execute(_SLOT_CONTEXT_SQL, [slot_id])
        row = cursor.fetchone()
    if row is None:
        return None
    settings_value, templates = row[4], row[8]
    return SlotContext(
        slot_id=row[0],
        is_active=row[1],
        provider=row[2],
        operation=row[3],
        provider_settings=json.loads(settings_value) if isinstance(settings_value, str) else settings_value,
        size_limit_mb=row[5],
        sync_response_seconds=row[6] or 48,
        ingest_password_hash=row[7] or "",
        templates=json.loads(templates) if isinstance(templates, str) else templates,
    )


def slot_size_limit_mb(*, slot_id: str) -> int | None:
    """The photo size limit of an active slot; None for an unknown or inactive slot."""
    from slots.models import Slot

    return (
        Slot.objects.filter(id=slot_id[:16], is_active=True).values_list("size_limit_mb", flat=True).first()
    )
