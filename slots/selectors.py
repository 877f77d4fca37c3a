"""Reads of studio configuration for the hot path."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from photochanger.sql import sql
from slots.models import Slot, SlotTemplateBinding, StudioSettings, TemplateMedia


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
    # Issue 12: the QR corner (slots.models.ShareQrCorner), the fallback slot's configuration ({} for
    # none: slot_id, provider, operation, provider_settings, templates) and the late-result grace in
    # seconds (0 when the studio does not keep late results).
    share_qr: str = "off"
    fallback: dict[str, Any] = field(default_factory=dict)
    late_result_grace_seconds: int = 0


# The hot path's one read of configuration: slot, bound templates (provider order), studio settings, and
# the fallback slot's configuration with its own templates (a slot never falls back to itself).
_SLOT_CONTEXT_SQL = sql(
    """
SELECT slot.{slot.id}, slot.{slot.is_active}, slot.{slot.provider}, slot.{slot.operation},
       slot.{slot.settings}, slot.{slot.size_limit_mb},
       studio.{studio.sync_response_seconds}, studio.{studio.ingest_password_hash},
       COALESCE((
           SELECT json_agg(json_build_object('path', template.{media.file},
                                             'mime_type', template.{media.mime_type},
                                             'size_bytes', template.{media.size_bytes},
                                             'role', binding.{binding.role}, 'name', template.{media.name})
                           ORDER BY binding.{binding.position}, binding.{binding.id})
             FROM {binding} AS binding
             JOIN {media} AS template ON template.{media.id} = binding.{binding.template}
            WHERE binding.{binding.slot} = slot.{slot.id}
       ), '[]'::json),
       slot.{slot.share_qr},
       CASE WHEN studio.{studio.keep_late_results} THEN studio.{studio.late_result_grace_seconds} ELSE 0 END,
       (SELECT json_build_object('slot_id', fallback.{slot.id}, 'provider', fallback.{slot.provider},
                                 'operation', fallback.{slot.operation},
                                 'provider_settings', fallback.{slot.settings},
                                 'templates', COALESCE((
                                   SELECT json_agg(json_build_object('path', template.{media.file},
                                                                     'mime_type', template.{media.mime_type},
                                                                     'size_bytes', template.{media.size_bytes},
                                                                     'role', binding.{binding.role}, 'name', template.{media.name})
                                                   ORDER BY binding.{binding.position}, binding.{binding.id})
                                     FROM {binding} AS binding
                                     JOIN {media} AS template ON template.{media.id} = binding.{binding.template}
                                    WHERE binding.{binding.slot} = fallback.{slot.id}
                               ), '[]'::json))
          FROM {slot} AS fallback
         WHERE fallback.{slot.id} = slot.{slot.fallback_slot} AND fallback.{slot.id} <> slot.{slot.id})
  FROM {slot} AS slot
  LEFT JOIN {studio} AS studio ON studio.{studio.id} = 1
 WHERE slot.{slot.id} = %s
""",
    slot=Slot,
    studio=StudioSettings,
    binding=SlotTemplateBinding,
    media=TemplateMedia,
)


def could_be_slot_id(slot_id: str) -> bool:
    """False for text no slot id can be: longer than the column, or with a NUL character (which
    PostgreSQL text cannot hold, so asking would fail rather than find nothing)."""
    longest = Slot._meta.get_field("id").max_length or 0
    return len(slot_id) <= longest and "\x00" not in slot_id


def slot_context_get(*, slot_id: str) -> SlotContext | None:
    """The slot, its bound templates (in provider order) and the global settings; None if no such slot."""
    if not could_be_slot_id(slot_id):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_SLOT_CONTEXT_SQL, [slot_id])
        row = cursor.fetchone()
    if row is None:
        return None
    settings_value, templates, fallback = row[4], row[8], row[11]
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
        share_qr=row[9] or "off",
        late_result_grace_seconds=row[10] or 0,
        fallback=(json.loads(fallback) if isinstance(fallback, str) else fallback) or {},
    )


def slot_size_limit_mb(*, slot_id: str) -> int | None:
    """The photo size limit of an active slot; None for an unknown or inactive slot."""
    if not could_be_slot_id(slot_id):
        return None
    return Slot.objects.filter(id=slot_id, is_active=True).values_list("size_limit_mb", flat=True).first()
