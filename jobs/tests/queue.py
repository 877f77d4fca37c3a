"""Jobs put straight into the queue (no web process): a pending row, its input photo and media row."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from jobs.models import Job
from jobs.tests.booth import make_jpeg
from media import storage
from media.models import MediaObject
from slots.models import StudioSettings
from slots.services import studio_settings_get


def make_pending_job(
    *,
    provider: str = "gemini",
    operation: str = "image_edit",
    settings: dict[str, Any] | None = None,
    photo: bytes | None = None,
    created_at: datetime | None = None,
    expires_in: float = 48.0,
    slot_id: str = "slot-001",
) -> Job:
    """A pending job whose input photo is stored under MEDIA_ROOT, as an ingest leaves it."""
    created_at = created_at or timezone.now()
    photo = photo if photo is not None else make_jpeg(64, 48)
    job = Job.objects.create(
        id=uuid.uuid4(),
        slot_id=slot_id,
        provider=provider,
        operation=operation,
        provider_settings=settings if settings is not None else {"prompt": "make it art"},
        created_at=created_at,
        expires_at=created_at + timedelta(seconds=expires_in),
    )
    path = storage.input_path(job.id, "image/jpeg")
    storage.write_new(path, photo)
    MediaObject.objects.create(
        job=job,
        kind="input",
        path=path,
        mime_type="image/jpeg",
        size_bytes=len(photo),
        created_at=created_at,
        expires_at=job.expires_at,
    )
    return job


def set_provider_caps(caps: dict[str, int]) -> None:
    """What staff do in the studio settings: the caps every claim reads."""
    studio_settings_get()
    StudioSettings.objects.filter(id=StudioSettings.SINGLETON_ID).update(provider_concurrency=caps)


def processing_count(provider: str) -> int:
    return Job.objects.filter(provider=provider, state="processing").count()
