"""``POST /ingest/<slot_id>``: check the booth's request in the catalogue's order, store the photo,
enqueue its job, and read the outcome the booth gets.

Async services for the ingest view. Blocking work never runs on the event loop, and each kind runs on
its own bounded pool (``photochanger.offload``): queries on the database threads, multipart parsing,
image checks and file copies on the CPU threads, the slow password hash on the hashing thread. Every
attempt is logged, accepted or not, without the password or image bytes.

Order of the checks: slot (404) → password lockout (429, decided before any parsing or hashing) →
request shape (400) → password (401) → size (413) → image bytes (415 / 413 for too many pixels).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.db import connection
from django.utils import timezone
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.request import Request

from jobs.models import Job
from jobs.prompts import settings_prompt_sent
from jobs.services import NewJobInput, job_create, job_time_out
from jobs.states import LIVE_STATES, JobState
from media import storage
from media.images import (
    FarTooManyPixels,
    UnreadableImage,
    image_data_check,
    pixel_dimensions,
    sniff_image_type,
)
from photochanger.db import DatabaseUnavailable, db_call
from photochanger.errors import HTTP_STATUS, FailureReason, ServiceError
from photochanger.intake import release_body
from photochanger.offload import cpu_call
from photochanger.sql import sql
from slots.passwords import ingest_password_checker
from slots.selectors import SlotContext, slot_context_get
from stats.selectors import client_recently_accepted, password_guesses_count
from stats.services import log_entry_rejection_create

FILE_FIELDS = ("fileToUpload", "file")
SECRET_FIELDS = frozenset({"password"})
MAX_METADATA_VALUE_LENGTH = 2000
SNIFF_BYTES = 64
# A client that had a photo accepted this recently is trusted: the all-clients password lockout
# never refuses it (only its own wrong passwords can).
TRUSTED_CLIENT_WINDOW = timedelta(hours=24)
# Unknown passwords waiting for the hashing thread before new ones from untrusted clients get 429.
MAX_WAITING_PASSWORD_HASHES = 4
BUSY_MESSAGE = "Too many passwords are being checked right now; new clients must wait before retrying."


@dataclass(frozen=True)
class IngestContext:
    slot: SlotContext | None
    client_guesses: int
    all_guesses: int


def ingest_context_get(*, slot_id: str, client_ip: str | None) -> IngestContext:
    """The slot and the password-lockout counters for this client, read in one database call."""
    guesses = password_guesses_count(
        since=timezone.now() - timedelta(seconds=settings.INGEST_PASSWORD_FAILURE_WINDOW_SECONDS),
        client_ip=client_ip,
        client_limit=settings.INGEST_PASSWORD_FAILURES_ALLOWED,
        all_limit=settings.INGEST_PASSWORD_GLOBAL_FAILURES_ALLOWED,
    )
    return IngestContext(
        slot=slot_context_get(slot_id=slot_id),
        client_guesses=guesses.from_this_client,
        all_guesses=guesses.from_everyone,
    )


def ingest_log_rejection(
    *,
    slot_id: str,
    reason: FailureReason,
    client_ip: str | None,
    duration_ms: int,
    password_guess: bool = False,
) -> None:
    log_entry_rejection_create(
        created_at=timezone.now(),
        slot_id=slot_id,
        http_status=HTTP_STATUS[reason],
        failure_reason=str(reason),
        duration_ms=duration_ms,
        client_ip=client_ip,
        password_guess=password_guess,
    )


class _Rejected(ServiceError):
    """A rejection that also says whether it was a new wrong password (what the lockout counts)."""

    def __init__(self, error: ServiceError, *, password_guess: bool) -> None:
        super().__init__(error.reason, error.message, retry_after=error.retry_after)
        self.password_guess = password_guess


async def ingest_accept(
    *, job_id: uuid.UUID, slot_id: str, request: Request, client_ip: str | None, received_at: datetime
) -> datetime:
    """Validate one booth request, store its photo and create its job; returns the job's deadline.

    Raises ``ServiceError`` from the catalogue; a rejected request leaves only its log entry behind
    (no job, no file; with the database down, not even that: ``DatabaseUnavailable`` is answered at once).
    """
    started = time.monotonic()
    try:
        return await _accept(
            job_id=job_id, slot_id=slot_id, request=request, client_ip=client_ip, received_at=received_at
        )
    except DatabaseUnavailable:
        raise  # nowhere to log it; answered at once (the web log has the warning)
    except ServiceError as error:
        await db_call(
            ingest_log_rejection,
            slot_id=slot_id,
            reason=error.reason,
            client_ip=client_ip,
            duration_ms=int((time.monotonic() - started) * 1000),
            password_guess=isinstance(error, _Rejected) and error.password_guess,
        )
        raise


async def _accept(
    *, job_id: uuid.UUID, slot_id: str, request: Request, client_ip: str | None, received_at: datetime
) -> datetime:
    context = await db_call(ingest_context_get, slot_id=slot_id, client_ip=client_ip)
    slot = context.slot
    if slot is None:
        raise ServiceError(FailureReason.SLOT_NOT_FOUND, f"No slot '{slot_id[:64]}'.")
    if not slot.is_active:
        raise ServiceError(FailureReason.SLOT_DISABLED, f"Slot '{slot.slot_id}' is not active.")
    await _check_lockout(context, client_ip)
    if ingest_password_checker.waiting >= MAX_WAITING_PASSWORD_HASHES and not await _trusted(client_ip):
        # Someone is guessing hard right now: a client that never had a photo accepted waits, before
        # its body is even parsed (a working booth's password is remembered and never waits here).
        raise recent_lockouts.remember(client_ip, BUSY_MESSAGE)

    # One trip to a CPU thread on the usual path: parse, and when the password is one already verified,
    # check and store the photo too.
    booth, stored = await cpu_call(_receive_photo, request, slot, job_id)
    try:
        if stored is None:
            await _check_password(slot.ingest_password_hash, booth.password, client_ip)
            stored = await cpu_call(_store_photo, booth, slot, job_id)
    finally:
        # The parsed copy and the received body: not kept while the booth waits for its result.
        booth.upload.close()
        release_body(request)
    try:
        expires_at = await db_call(
            job_create,
            new=NewJobInput(
                job_id=job_id,
                slot_id=slot.slot_id,
                provider=slot.provider,
                operation=slot.operation,
                provider_settings=slot.provider_settings,
                templates=slot.templates,
                sync_response_seconds=slot.sync_response_seconds,
                received_at=received_at,
                input_path=stored.path,
                input_size_bytes=stored.size_bytes,
                input_mime_type=stored.mime_type,
                request_metadata=booth.metadata,
                client_ip=client_ip,
                share_qr=slot.share_qr,
                fallback=fallback_snapshot(slot.fallback, booth.metadata),
                late_result_grace_seconds=slot.late_result_grace_seconds,
                prompt_sent=settings_prompt_sent(slot.provider_settings, booth.metadata),
            ),
        )
    except BaseException:
        await cpu_call(storage.delete, stored.path)
        raise
    _trust(client_ip)
    return expires_at


def fallback_snapshot(fallback: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """The fallback slot's configuration as the job keeps it, with its prompt filled from the booth's fields."""
    if not fallback:
        return {}
    settings_value = fallback.get("provider_settings") or {}
    return {**fallback, "prompt_sent": settings_prompt_sent(settings_value, metadata)}


@dataclass(frozen=True)
class StoredPhoto:
    path: str
    size_bytes: int
    mime_type: str


def _receive_photo(
    request: Request, slot: SlotContext, job_id: uuid.UUID
) -> tuple[BoothRequest, StoredPhoto | None]:
    """Parse the booth's request; store the photo too if its password already verified (CPU thread)."""
    booth = booth_request_read(request)
    if ingest_password_checker.known(stored_hash=slot.ingest_password_hash, candidate=booth.password):
        try:
            return booth, _store_photo(booth, slot, job_id)
        except BaseException:
            booth.upload.close()
            raise
    return booth, None


def _store_photo(booth: BoothRequest, slot: SlotContext, job_id: uuid.UUID) -> StoredPhoto:
    """Check the photo's size, type and pixels, then copy it to the media store (CPU thread)."""
    photo = photo_check(booth.upload, slot.size_limit_mb)
    path = storage.input_path(job_id, photo.mime_type)
    try:
        size_bytes = storage.write_new_from(path, booth.upload)
    except OSError as error:
        # A full disk, or S3 down or refusing (storage.StoreUnavailable): 503; no job, no file.
        raise storage.not_stored(error, "the photo") from error
    return StoredPhoto(path=path, size_bytes=size_bytes, mime_type=photo.mime_type)


async def _check_lockout(context: IngestContext, client_ip: str | None) -> None:
    """429 for a client that guessed too often, or for any untrusted client while many guess at once."""
    if context.client_guesses >= settings.INGEST_PASSWORD_FAILURES_ALLOWED:
        raise recent_lockouts.remember(
            client_ip, "Too many wrong passwords from this client; wait before retrying."
        )
    if context.all_guesses >= settings.INGEST_PASSWORD_GLOBAL_FAILURES_ALLOWED and not await _trusted(
        client_ip
    ):
        raise recent_lockouts.remember(
            client_ip, "Too many wrong passwords are being tried; new clients must wait before retrying."
        )


class RecentLockouts:
    """Clients this process just refused for guessing, so their next requests cost (almost) nothing.

    For ``RECHECK_SECONDS`` after a lockout, the booth-path middleware answers such a client's ingest
    with the same 429 from its headers alone, ``TARPIT_SECONDS`` later, before reading the body, parsing
    or asking the database (the attempt is still logged). Then the database decides again. Bounded: the
    oldest entries go first. Event-loop only.
    """

    RECHECK_SECONDS = 5.0
    TARPIT_SECONDS = 1.0
    MAX_CLIENTS = 10_000

    def __init__(self) -> None:
        self._until: dict[str, tuple[float, str]] = {}

    def remember(self, client_ip: str | None, message: str) -> ServiceError:
        error = ServiceError(
            FailureReason.RATE_LIMITED, message, retry_after=settings.INGEST_PASSWORD_FAILURE_WINDOW_SECONDS
        )
        if client_ip:
            self._until.pop(client_ip, None)
            self._until[client_ip] = (time.monotonic() + self.RECHECK_SECONDS, message)
            while len(self._until) > self.MAX_CLIENTS:
                del self._until[next(iter(self._until))]
        return error

    def refusal(self, client_ip: str | None) -> ServiceError | None:
        """The 429 to give this client right away, or None to let the request through."""
        entry = self._until.get(client_ip or "")
        if entry is None:
            return None
        until, message = entry
        if time.monotonic() >= until:
            del self._until[client_ip or ""]
            return None
        return ServiceError(
            FailureReason.RATE_LIMITED, message, retry_after=settings.INGEST_PASSWORD_FAILURE_WINDOW_SECONDS
        )


recent_lockouts = RecentLockouts()


async def _trusted(client_ip: str | None) -> bool:
    if not client_ip:
        return False
    if trusted_clients.get(client_ip, 0.0) > time.monotonic():
        return True
    if await db_call(
        client_recently_accepted, client_ip=client_ip, since=timezone.now() - TRUSTED_CLIENT_WINDOW
    ):
        _trust(client_ip)
        return True
    return False


# Clients this process saw with an accepted photo (until when they stay trusted), so asking the
# database is needed only for a client new to this process. Bounded: the oldest entries go first.
trusted_clients: dict[str, float] = {}
MAX_TRUSTED_CLIENTS = 10_000


def _trust(client_ip: str | None) -> None:
    if client_ip:
        trusted_clients.pop(client_ip, None)
        trusted_clients[client_ip] = time.monotonic() + TRUSTED_CLIENT_WINDOW.total_seconds()
        while len(trusted_clients) > MAX_TRUSTED_CLIENTS:
            del trusted_clients[next(iter(trusted_clients))]


async def _check_password(stored_hash: str, candidate: str, client_ip: str | None) -> None:
    known = ingest_password_checker.known(stored_hash=stored_hash, candidate=candidate)
    if known is True:
        return
    if known is False:
        raise ServiceError(FailureReason.INVALID_PASSWORD)  # already hashed once: not a new guess
    if ingest_password_checker.waiting >= MAX_WAITING_PASSWORD_HASHES and not await _trusted(client_ip):
        raise recent_lockouts.remember(client_ip, BUSY_MESSAGE)
    if not await ingest_password_checker.verify(stored_hash=stored_hash, candidate=candidate):
        raise _Rejected(ServiceError(FailureReason.INVALID_PASSWORD), password_guess=True)


@dataclass(frozen=True)
class BoothRequest:
    upload: UploadedFile
    password: str
    metadata: dict[str, Any]


def booth_request_read(request: Request) -> BoothRequest:
    """Parse the booth's multipart body (CPU thread): the photo, the password, every other text field."""
    try:
        fields: Any = request.data
        files = request.FILES
    except (ParseError, UnsupportedMediaType, SuspiciousOperation, UnicodeError) as error:
        # UnicodeError: a charset in the Content-Type that cannot decode the form (idna refuses the
        # "replace" error handling Django decodes with).
        raise ServiceError(FailureReason.INVALID_REQUEST, "Malformed multipart/form-data body.") from error
    except RequestDataTooBig as error:
        raise ServiceError(FailureReason.PAYLOAD_TOO_LARGE) from error
    except OSError as error:
        # A photo over FILE_UPLOAD_MAX_MEMORY_SIZE is parsed into a temporary file: the disk is full.
        raise storage.not_stored(error, "the photo") from error
    field_name = next((name for name in FILE_FIELDS if name in files), None)
    if field_name is None:
        raise ServiceError(FailureReason.INVALID_REQUEST, "The photo is missing (file part 'fileToUpload').")
    upload = files[field_name]
    password = fields.get("password")
    if not password or not isinstance(password, str):
        upload.close()
        raise ServiceError(FailureReason.INVALID_REQUEST, "The 'password' field is missing.")
    return BoothRequest(
        upload=upload, password=password, metadata=_request_metadata(fields, field_name, upload)
    )


@dataclass(frozen=True)
class CheckedPhoto:
    mime_type: str
    width: int | None
    height: int | None


DAMAGED_PHOTO = "The photo is a damaged or incomplete image"


def photo_check(upload: UploadedFile, size_limit_mb: int) -> CheckedPhoto:
    """Size, type (by bytes), pixel count (from the header) and complete image data (CPU thread).

    Cheapest first: a photo with too many pixels is refused from its header, before anything is
    decoded; then the image data is read to its end (``media.images.image_data_check``: a DSLR JPEG
    decoded at 1/8 scale, about 40 ms), so a truncated or undecodable photo never becomes a job.
    Raises the catalogue's ``ServiceError`` (413, 415). Also used by staff test runs (``jobs.slot_test_runs``).
    """
    limit = min(size_limit_mb * 1024 * 1024, settings.INGEST_ABSOLUTE_MAX_BYTES)
    if upload.size is None or upload.size > limit:
        raise ServiceError(
            FailureReason.PAYLOAD_TOO_LARGE, f"The photo exceeds this slot's limit of {size_limit_mb} MB."
        )
    upload.seek(0)
    mime_type = sniff_image_type(upload.read(SNIFF_BYTES))
    if mime_type is None:
        raise ServiceError(FailureReason.UNSUPPORTED_MEDIA_TYPE)
    cap = f"at most {settings.INGEST_MAX_PIXELS / 1_000_000:g} megapixels are accepted"
    try:
        dimensions = pixel_dimensions(upload, mime_type)
    except UnreadableImage as error:
        raise ServiceError(
            FailureReason.UNSUPPORTED_MEDIA_TYPE, f"{DAMAGED_PHOTO}: its header cannot be read."
        ) from error
    except FarTooManyPixels as error:
        raise ServiceError(
            FailureReason.PAYLOAD_TOO_LARGE, f"The photo has far too many pixels; {cap}."
        ) from error
    width, height = dimensions if dimensions is not None else (None, None)
    if width is not None and height is not None and width * height > settings.INGEST_MAX_PIXELS:
        raise ServiceError(
            FailureReason.PAYLOAD_TOO_LARGE, f"The photo has too many pixels ({width}×{height}); {cap}."
        )
    try:
        image_data_check(upload, mime_type)
    except UnreadableImage as error:
        raise ServiceError(
            FailureReason.UNSUPPORTED_MEDIA_TYPE,
            f"{DAMAGED_PHOTO}: its data ends early or cannot be decoded.",
        ) from error
    return CheckedPhoto(mime_type=mime_type, width=width, height=height)


def _request_metadata(fields: Any, field_name: str, upload: UploadedFile) -> dict[str, Any]:
    """Every text field the booth sent (hash, time, survey answers…) except secrets, plus file facts."""
    metadata: dict[str, Any] = {}
    for name, values in fields.lists():
        if name in SECRET_FIELDS or name in FILE_FIELDS:
            continue
        texts = [_storable(value, MAX_METADATA_VALUE_LENGTH) for value in values if isinstance(value, str)]
        if texts:
            metadata[_storable(name, 100)] = texts[0] if len(texts) == 1 else texts
    metadata["_upload"] = {
        "field": field_name,
        "filename": _storable(upload.name or "", 255),
        "content_type": _storable(upload.content_type or "", 100),
        "size_bytes": upload.size,
    }
    return metadata


def _storable(text: str, length: int) -> str:
    """``text`` cut to ``length`` as PostgreSQL's jsonb can hold it: no NUL, no lone surrogate."""
    cut = text[:length].replace("\x00", "\ufffd")
    return cut.encode("utf-8", "replace").decode("utf-8")


# --- The answer the booth gets -------------------------------------------------------------------


@dataclass(frozen=True)
class IngestOutcome:
    job_id: uuid.UUID
    state: str
    failure_reason: str
    failure_message: str
    result_path: str
    result_mime_type: str
    result: bytes | None  # read along with the row when small; None: read it from result_path
    share_token: str = ""  # the result's share page (jobs.share), "" when none


# The waiter reads this once per photo, right after finalize: one plain statement (the ORM's query
# building cost more than the query itself here). Names from the model, so a rename fails at import.
_OUTCOME_SQL = sql(
    """
SELECT {job.state}, {job.expires_at}, {job.failure_reason}, {job.failure_message}, {job.result_path},
       {job.result_mime_type}, {job.result_size_bytes}, {job.share_token}
  FROM {job} WHERE {job.id} = %s
""",
    job=Job,
)
# A result this small on the local disk is read on the database thread with its row (one thread hop, not
# two); larger ones (a DSLR-size image), and any on S3 (a round trip must not hold a database thread),
# are read by the view in a thread of their own.
SMALL_RESULT_BYTES = 1024 * 1024


def ingest_outcome_get(*, job_id: uuid.UUID) -> IngestOutcome:
    """Read the job (the only source of truth); at or past the deadline, time it out if still live."""
    for _attempt in range(2):
        with connection.cursor() as cursor:
            cursor.execute(_OUTCOME_SQL, [job_id])
            row = cursor.fetchone()
        (state, expires_at, failure_reason, failure_message, result_path, result_mime_type, result_size,
         share_token) = row  # fmt: skip
        if state in LIVE_STATES and timezone.now() >= expires_at:
            job_time_out(job_id=job_id)
            continue  # re-read: we, a worker or cleanup finalized it just now
        break
    succeeded = state == JobState.SUCCEEDED
    result = None
    small = result_size is not None and result_size <= SMALL_RESULT_BYTES
    if succeeded and result_path and small and storage.is_local():
        try:
            result = storage.read(result_path)
        except FileNotFoundError:
            result = None  # the caller reports the missing file
    return IngestOutcome(
        job_id=job_id,
        state=state,
        failure_reason=failure_reason,
        failure_message=failure_message,
        result_path=result_path if succeeded else "",
        result_mime_type=result_mime_type,
        result=result,
        share_token=share_token if succeeded else "",
    )
