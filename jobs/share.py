"""The guest's share page of a result: ``/s/<token>``, and its QR code on the returned image.

Every result the worker stores (in time or late) gets a share token of 192 random bits, recorded with
the result. The page shows the image, a download button and the expiry date, and nothing that leads
elsewhere (no job id, no slot, no listing); after the result's retention it answers 410. When the
slot asks for it (``Slot.share_qr``), the page's URL is stamped as a QR code onto the image's corner
before it is stored, so the printed photo leads the guest to the digital copy.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.states import JobState
from media import qr
from providers.base import ProviderImage

logger = logging.getLogger(__name__)

TOKEN_BYTES = 24  # 192 bits; the issue asks for at least 128
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")
SHARE_QR_OFF = "off"


def share_token_new() -> str:
    """A fresh, unguessable share token (URL-safe base64, 32 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def share_url(token: str) -> str:
    """The share page's absolute address, as the guest's phone reaches it."""
    return f"{settings.PUBLIC_BASE_URL}{reverse('share-page', args=[token])}"


def share_qr_stamp(image: ProviderImage, *, token: str, corner: str, job_id: uuid.UUID) -> ProviderImage:
    """The provider's image with the share page's QR code in ``corner`` (blocking: run it in a thread).

    ``corner`` off, or an image that cannot carry a code (undecodable here, too small): the image as it
    came, so a stamping problem never costs the guest the photo.
    """
    if corner == SHARE_QR_OFF or corner not in qr.CORNERS:
        return image
    try:
        data, mime_type = qr.stamp_qr(image.data, image.mime_type, url=share_url(token), corner=corner)
    except qr.CannotStamp as error:
        logger.warning("job %s: share QR code not stamped: %s", job_id, error, extra={"job_id": str(job_id)})
        return image
    return ProviderImage(data=data, mime_type=mime_type)


@dataclass(frozen=True)
class SharedResult:
    """What the share page may show: never the job's id or slot."""

    token: str
    path: str
    mime_type: str
    size_bytes: int | None
    expires_at: datetime | None
    expired: bool

    @property
    def filename(self) -> str:
        extension = self.path.rsplit(".", 1)[-1] if "." in self.path else "jpg"
        return f"photo-{self.token[:8]}.{extension}"


def shared_result_get(*, token: str) -> SharedResult | None:
    """The result behind a share token; None for a token that leads nowhere (never issued, or no result).

    A result past its retention (or already deleted by cleanup) comes back with ``expired`` set.
    """
    if not TOKEN_SHAPE.fullmatch(token):
        return None  # never a token we issued (and no text PostgreSQL could choke on, like NUL)
    # served by the unique index job_share_token_unique
    job = (
        Job.objects.filter(share_token=token)
        .filter(state__in=[JobState.SUCCEEDED, JobState.TIMEOUT])
        .exclude(result_path="")
        .only(
            "result_path", "result_mime_type", "result_size_bytes", "result_expires_at", "result_deleted_at"
        )
        .first()
    )
    if job is None:
        return None
    expired = job.result_deleted_at is not None or (
        job.result_expires_at is not None and job.result_expires_at <= timezone.now()
    )
    return SharedResult(
        token=token,
        path=job.result_path,
        mime_type=job.result_mime_type,
        size_bytes=job.result_size_bytes,
        expires_at=job.result_expires_at,
        expired=expired,
    )
