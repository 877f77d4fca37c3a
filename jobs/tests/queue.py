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


def make_finished_job(
    *,
    slot_id: str = "slot-001",
    state: str = "succeeded",
    provider: str = "local",
    created_at: datetime | None = None,
    seconds: float = 3.2,
    is_test: bool = False,
    with_thumbnails: bool = True,
    result_expires_in: timedelta = timedelta(hours=72),
    failure_reason: str = "",
    failure_message: str = "",
    request_metadata: dict[str, Any] | None = None,
    photo: bytes | None = None,
    result: bytes | None = None,
) -> Job:
    """A final job as the worker leaves it: result and thumbnails stored under MEDIA_ROOT when it succeeded."""
    from media.thumbnails import thumbnail_store_from_bytes

    created_at = created_at or timezone.now() - timedelta(minutes=1)
    finalized_at = created_at + timedelta(seconds=seconds)
    job_id = uuid.uuid4()
    fields: dict[str, Any] = {}
    photo = photo or make_jpeg(640, 480)
    result = result or photo
    if with_thumbnails:
        fields["input_thumbnail_path"] = thumbnail_store_from_bytes(job_id=job_id, kind="input", image=photo)
    if state == "succeeded":
        fields["result_path"] = storage.result_path(job_id, "image/jpeg")
        storage.write_new(fields["result_path"], result)
        fields.update(
            result_mime_type="image/jpeg",
            result_size_bytes=len(result),
            result_sha256="0" * 64,
            result_expires_at=finalized_at + result_expires_in,
        )
        if with_thumbnails:
            fields["result_thumbnail_path"] = thumbnail_store_from_bytes(
                job_id=job_id, kind="result", image=result
            )
    return Job.objects.create(
        id=job_id,
        slot_id=slot_id,
        state=state,
        provider=provider,
        operation="grayscale",
        created_at=created_at,
        expires_at=created_at + timedelta(seconds=48),
        claimed_at=created_at + timedelta(seconds=0.1),
        claimed_by="worker-1",
        claim_count=1,
        provider_calls=1,
        finalized_at=finalized_at,
        is_test=is_test,
        failure_reason=failure_reason,
        failure_message=failure_message,
        request_metadata=request_metadata or {},
        **fields,
    )
