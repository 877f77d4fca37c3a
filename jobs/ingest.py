"""The synchronous half of ``POST /ingest/<slot_id>``: validate in the catalogue's order, store, enqueue.

Runs in the hot-path database pool (``photochanger.db``). Every attempt is logged, accepted or not,
without the password or image bytes.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.request import Request

from jobs.services import NewJobInput, job_create
from media.images import sniff_image_type
from photochanger.errors import HTTP_STATUS, FailureReason, ServiceError
from slots.selectors import slot_context_get
from slots.services import ingest_password_check
from stats.models import LogEvent, ProcessingLogEntry

FILE_FIELDS = ("fileToUpload", "file")
SECRET_FIELDS = frozenset({"password"})
MAX_METADATA_VALUE_LENGTH = 2000


def ingest_accept(*, job_id: uuid.UUID, slot_id: str, request: Request, client_ip: str | None) -> datetime:
    """Validate one booth request and create its job; returns the job's deadline.

    Raises ``ServiceError`` from the catalogue; a rejected request leaves only its log entry behind.
    """
    started = time.monotonic()
    try:
        return _accept(job_id=job_id, slot_id=slot_id, request=request, client_ip=client_ip)
    except ServiceError as error:
        ingest_log_rejection(
            slot_id=slot_id,
            reason=error.reason,
            client_ip=client_ip,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        raise


def ingest_log_rejection(
    *, slot_id: str, reason: FailureReason, client_ip: str | None, duration_ms: int
) -> None:
    ProcessingLogEntry.objects.create(
        created_at=timezone.now(),
        event=LogEvent.INGEST_REJECTED,
        slot_id=slot_id[:64],
        http_status=HTTP_STATUS[reason],
        failure_reason=reason,
        duration_ms=duration_ms,
        client_ip=client_ip,
    )


def _accept(*, job_id: uuid.UUID, slot_id: str, request: Request, client_ip: str | None) -> datetime:
    slot = slot_context_get(slot_id=slot_id)
    if slot is None:
        raise ServiceError(FailureReason.SLOT_NOT_FOUND, f"No slot '{slot_id[:64]}'.")
    if not slot.is_active:
        raise ServiceError(FailureReason.SLOT_DISABLED, f"Slot '{slot.slot_id}' is not active.")

    try:
        fields: Any = request.data
        files = request.FILES
    except (ParseError, UnsupportedMediaType) as error:
        raise ServiceError(FailureReason.INVALID_REQUEST, "Malformed multipart/form-data body.") from error
    upload = next((files[name] for name in FILE_FIELDS if name in files), None)
    password = fields.get("password")
    if upload is None:
        raise ServiceError(FailureReason.INVALID_REQUEST, "The photo is missing (file part 'fileToUpload').")
    if not password:
        raise ServiceError(FailureReason.INVALID_REQUEST, "The 'password' field is missing.")

    if not ingest_password_check(stored_hash=slot.ingest_password_hash, candidate=str(password)):
        if _too_many_password_failures(client_ip):
            raise ServiceError(
                FailureReason.RATE_LIMITED,
                "Too many wrong passwords from this client; wait before retrying.",
                retry_after=settings.INGEST_PASSWORD_FAILURE_WINDOW_SECONDS,
            )
        raise ServiceError(FailureReason.INVALID_PASSWORD)

    limit = min(slot.size_limit_mb * 1024 * 1024, settings.INGEST_ABSOLUTE_MAX_BYTES)
    if upload.size is None or upload.size > limit:
        raise ServiceError(
            FailureReason.PAYLOAD_TOO_LARGE,
            f"The photo exceeds this slot's limit of {slot.size_limit_mb} MB.",
        )
    upload.seek(0)
    photo = upload.read()
    mime_type = sniff_image_type(photo)
    if mime_type is None:
        raise ServiceError(FailureReason.UNSUPPORTED_MEDIA_TYPE)

    return job_create(
        new=NewJobInput(
            job_id=job_id,
            slot_id=slot.slot_id,
            provider=slot.provider,
            operation=slot.operation,
            provider_settings=slot.provider_settings,
            templates=slot.templates,
            sync_response_seconds=slot.sync_response_seconds,
            photo=photo,
            photo_mime_type=mime_type,
            request_metadata=_request_metadata(fields, upload),
            client_ip=client_ip,
        )
    )


def _too_many_password_failures(client_ip: str | None) -> bool:
    """Wrong passwords from this client within the window (the current one not yet logged)."""
    since = timezone.now() - timedelta(seconds=settings.INGEST_PASSWORD_FAILURE_WINDOW_SECONDS)
    # served by the partial index log_password_failures_idx
    recent = ProcessingLogEntry.objects.filter(
        failure_reason=FailureReason.INVALID_PASSWORD, client_ip=client_ip, created_at__gte=since
    ).count()
    return recent >= settings.INGEST_PASSWORD_FAILURES_ALLOWED


def _request_metadata(fields: Any, upload: Any) -> dict[str, Any]:
    """Every text field the booth sent (hash, time, survey answers…) except secrets, plus file facts."""
    metadata: dict[str, Any] = {}
    for name, values in fields.lists():
        if name in SECRET_FIELDS or name in FILE_FIELDS:
            continue
        texts = [str(value)[:MAX_METADATA_VALUE_LENGTH] for value in values if isinstance(value, str)]
        if texts:
            metadata[name[:100]] = texts[0] if len(texts) == 1 else texts
    metadata["_upload"] = {
        "field": upload.field_name,
        "filename": (upload.name or "")[:255],
        "content_type": (upload.content_type or "")[:100],
        "size_bytes": upload.size,
    }
    return metadata
