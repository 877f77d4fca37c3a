"""Temporary public links: short-lived URLs to files a provider must download (Turbotext)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from media.models import MediaKind, MediaObject
from photochanger.deadlines import artifact_expires_at
from photochanger.errors import FailureReason, ServiceError


def public_link_create(*, job_id: uuid.UUID, path: str, mime_type: str, size_bytes: int = 0) -> str:
    """A random, unguessable URL to ``path`` (in the media store) valid while the job lives.

    It expires at ``min(job.expires_at, now + T_public_link_ttl)`` (``photochanger.deadlines``) and is
    released (410) when the job is finalized. Raises ``ServiceError(gone)`` if the job is already final.
    """
    from jobs.models import Job
    from jobs.states import LIVE_STATES
    from slots.services import studio_settings_get

    job_expires_at = (
        Job.objects.filter(id=job_id, state__in=list(LIVE_STATES))
        .values_list("expires_at", flat=True)
        .first()
    )
    if job_expires_at is None:
        raise ServiceError(FailureReason.GONE, "The job is already final.")
    ttl_seconds = studio_settings_get().public_link_ttl_seconds
    now = timezone.now()
    link = MediaObject.objects.create(
        job_id=job_id,
        kind=MediaKind.PUBLIC_LINK,
        path=path,
        owns_file=False,
        mime_type=mime_type,
        size_bytes=size_bytes,
        created_at=now,
        expires_at=artifact_expires_at(
            created_at=now, job_expires_at=job_expires_at, limit=timedelta(seconds=ttl_seconds)
        ),
    )
    return f"{settings.PUBLIC_BASE_URL}/public/media/{link.id}"


@dataclass(frozen=True)
class PublicMedia:
    path: str
    mime_type: str
    size_bytes: int


def public_media_get(*, media_id: str) -> PublicMedia:
    """The file behind a live public link; ``not_found`` for unknown ids, ``gone`` once expired."""
    link = (
        MediaObject.objects.filter(id=media_id[:64], kind=MediaKind.PUBLIC_LINK)
        .only("path", "mime_type", "size_bytes", "expires_at", "deleted_at")
        .first()
    )
    if link is None:
        raise ServiceError(FailureReason.NOT_FOUND)
    if link.deleted_at is not None or link.expires_at <= timezone.now():
        raise ServiceError(FailureReason.GONE, "This link has expired.")
    return PublicMedia(path=link.path, mime_type=link.mime_type, size_bytes=link.size_bytes)
