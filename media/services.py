"""Temporary public links: short-lived URLs to files a provider must download (Turbotext)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

from media import storage
from media.models import new_media_id
from photochanger.errors import FailureReason, ServiceError

# The link lives while the job does and no longer than the studio's link TTL:
# expires_at = min(job.expires_at, now + T_public_link_ttl), as jobs.deadlines.artifact_expires_at says.
_CREATE_LINK_SQL = """
INSERT INTO media_mediaobject (id, job_id, kind, path, owns_file, mime_type, size_bytes, created_at, expires_at)
SELECT %(id)s, job.id, 'public_link', %(path)s, false, %(mime_type)s, %(size)s, %(now)s,
       LEAST(job.expires_at, %(now)s + make_interval(secs => studio.public_link_ttl_seconds))
  FROM jobs_job AS job, slots_studiosettings AS studio
 WHERE job.id = %(job_id)s AND studio.id = 1 AND job.state IN ('pending', 'processing')
RETURNING id
"""


def public_link_create(*, job_id: uuid.UUID, path: str, mime_type: str, size_bytes: int = 0) -> str:
    """A random, unguessable URL to ``path`` (under MEDIA_ROOT) valid while the job lives.

    Raises ``ServiceError(gone)`` if the job is already final.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _CREATE_LINK_SQL,
            {
                "id": new_media_id(),
                "job_id": job_id,
                "path": path,
                "mime_type": mime_type,
                "size": size_bytes,
                "now": timezone.now(),
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise ServiceError(FailureReason.GONE, "The job is already final.")
    return f"{settings.PUBLIC_BASE_URL}/public/media/{row[0]}"


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
