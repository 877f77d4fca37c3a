"""Staff test runs: a photo sent through a slot's real pipeline from the admin, before the event.

The photo gets the booth's checks (size, type by bytes, pixels: ``jobs.ingest.photo_check``) and becomes
an ordinary job (``jobs.services.job_create``) marked ``is_test``, with the slot's *saved* provider,
operation, settings and templates; the queue, a worker and the provider do the rest, exactly as for a
booth. No ingest password is involved (staff are logged in) and nothing is held open: the caller shows
the job's progress on a page that refreshes itself.

An inactive slot can be test-run too, when its saved configuration would be accepted for activation
(the same check as the slot page's "active" box): that is how staff try a slot before opening it.
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.utils import timezone
from django.utils.translation import gettext as _

from jobs.ingest import fallback_snapshot, photo_check
from jobs.prompts import settings_prompt_sent
from jobs.selectors import JobOutcome, slot_test_run_get
from jobs.services import NewJobInput, job_create, job_time_out
from media import storage
from photochanger.errors import FailureReason, ServiceError
from slots.models import Slot
from slots.selectors import slot_context_get
from slots.services import slot_configuration_errors

# A colourful 640×427 JPEG staff can send without having a photo at hand.
SAMPLE_PHOTO = Path(__file__).resolve().parent / "static" / "jobs" / "test-run-sample.jpg"
SAMPLE_PHOTO_STATIC = "jobs/test-run-sample.jpg"


class TestRunRefused(Exception):
    """The test run was not started; ``problems`` say why, in the staff's language."""

    __test__ = False  # not a pytest test class

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def slot_test_run_problems(*, slot: Slot) -> list[str]:
    """Why the slot's saved configuration cannot be test-run: what activating it would refuse; [] if none."""
    as_if_active = copy.copy(slot)
    as_if_active.is_active = True
    roles = list(slot.template_bindings.values_list("role", flat=True))
    errors = slot_configuration_errors(slot=as_if_active, template_roles=roles)
    return [str(message) for messages in errors.values() for message in messages]


def slot_test_run_start(
    *, slot: Slot, upload: UploadedFile, started_by: str = "", sample: bool = False
) -> uuid.UUID:
    """Check the photo as ingest would, store it and queue its test job; returns the job id.

    Raises ``TestRunRefused`` (nothing stored, no job) for a slot whose configuration could not be
    activated, a photo the booth's ingest would refuse (too big, not an image, too many pixels), or a
    photo that cannot be stored (a full disk, the media store down: "Service unavailable").
    """
    problems = slot_test_run_problems(slot=slot)
    if problems:
        raise TestRunRefused(problems)
    context = slot_context_get(slot_id=slot.id)
    if context is None:
        raise TestRunRefused([_("This slot does not exist.")])
    received_at = timezone.now()
    try:
        photo = photo_check(upload, context.size_limit_mb)
    except ServiceError as error:
        raise TestRunRefused([_photo_problem(error, context.size_limit_mb)]) from error
    job_id = uuid.uuid4()
    path = storage.input_path(job_id, photo.mime_type)
    try:
        size_bytes = storage.write_new_from(path, upload)
    except OSError as error:
        # A full disk or a media store that is down: said on the page (and logged), not a server error.
        raise TestRunRefused(
            [_photo_problem(storage.not_stored(error, "the photo"), context.size_limit_mb)]
        ) from error
    try:
        job_create(
            new=NewJobInput(
                job_id=job_id,
                slot_id=context.slot_id,
                provider=context.provider,
                operation=context.operation,
                provider_settings=context.provider_settings,
                templates=context.templates,
                sync_response_seconds=context.sync_response_seconds,
                received_at=received_at,
                input_path=path,
                input_size_bytes=size_bytes,
                input_mime_type=photo.mime_type,
                request_metadata={
                    "test_run": {
                        "started_by": started_by,
                        "filename": Path(upload.name or "").name[:255],
                        "sample_photo": sample,
                    }
                },
                client_ip=None,
                is_test=True,
                # As a booth photo would go: the QR code, the fallback, late results; the prompt with its
                # placeholders empty (no booth fields).
                share_qr=context.share_qr,
                fallback=fallback_snapshot(context.fallback, {}),
                late_result_grace_seconds=context.late_result_grace_seconds,
                prompt_sent=settings_prompt_sent(context.provider_settings, {}),
            )
        )
    except BaseException:
        storage.delete(path)
        raise
    return job_id


def slot_test_run_outcome(*, slot_id: str, job_id: uuid.UUID) -> JobOutcome | None:
    """Where the slot's test run stands; None if there is no such test run.

    Nobody waits on a test job the way the booth's request waits on its job, so a test run still live
    past its deadline (no worker running) is timed out here, as the ingest waiter would.
    """
    outcome = slot_test_run_get(slot_id=slot_id, job_id=job_id)
    if outcome is not None and not outcome.is_final and timezone.now() >= outcome.expires_at:
        job_time_out(job_id=job_id)
        outcome = slot_test_run_get(slot_id=slot_id, job_id=job_id)
    return outcome


def sample_photo() -> UploadedFile:
    """The bundled sample photo, as if uploaded."""
    return SimpleUploadedFile(SAMPLE_PHOTO.name, SAMPLE_PHOTO.read_bytes(), content_type="image/jpeg")


def _photo_problem(error: ServiceError, size_limit_mb: int) -> str:
    if error.reason == FailureReason.PAYLOAD_TOO_LARGE:
        return _(
            "The photo is too large: this slot accepts up to %(megabytes)s MB and %(megapixels)s megapixels."
        ) % {"megabytes": size_limit_mb, "megapixels": f"{settings.INGEST_MAX_PIXELS / 1_000_000:g}"}
    if error.reason == FailureReason.UNSUPPORTED_MEDIA_TYPE:
        return _("The file is not a JPEG, PNG, WebP or HEIC image, or it is damaged.")
    return str(FailureReason(error.reason).label)
