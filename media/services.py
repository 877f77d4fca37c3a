"""Temporary public links: short-lived URLs to files a provider must download (Turbotext)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from media import storage
from media.models import MediaKind, MediaObject
from photochanger.deadlines import artifact_expires_at
from photochanger.errors import FailureReason, ServiceError

_LINK_CONTEXT_SQL = """
SELECT job.created_at, job.expires_at, studio.public_link_ttl_seconds
  FROM jobs_job AS job, slots_studiosettings AS studio
 WHERE job.id = %s AND studio.id = 1 AND job.state IN ('pending', 'processing')
"""


def public_link_create(*, job_id: uuid.UUID, path: str, mime_type: str, size_bytes: int = 0) -> str:
    """A random, unguessable URL to ``path`` (under MEDIA_ROOT) valid while the job lives.

    It expires at ``min(job.expires_at, now + T_public_link_ttl)`` (``photochanger.deadlines``) and is
    released (410) when the job is finalized. Raises ``ServiceError(gone)`` if the job is already final.
    """
    with connection.cursor() as cursor:
        cursor.execute(_LINK_CONTEXT_SQL, [job_id])
        row = cursor.fetchone()
    if row is None:
        raise ServiceError(FailureReason.GONE, "The job is already final.")
    _created_at, job_expires_at, ttl_seconds = row
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
    data: bytes
    mime_type: str


def public_media_get(*, media_id: str) -> PublicMedia:
    """The file behind a live public link; ``not_found`` for unknown ids, ``gone`` once expired."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT path, mime_type, expires_at, deleted_at FROM media_mediaobject WHERE id = %s AND kind = 'public_link'",
            [media_id[:64]],
        )
        row = cursor.fetchone()
    if row is None:
        raise ServiceError(FailureReason.NOT_FOUND)
    path, mime_type, expires_at, deleted_at = row
    if deleted_at is not None or expires_at <= timezone.now():
        raise ServiceError(FailureReason.GONE, "This link has expired.")
    try:
        return PublicMedia(data=storage.read(path), mime_type=mime_type)
    except FileNotFoundError:
        raise ServiceError(FailureReason.GONE, "This link has expired.") from None
