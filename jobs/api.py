"""The booth-facing endpoints: ``POST /ingest/<slot_id>`` and ``GET /public/results/<job_id>``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request

from jobs.ingest import ingest_accept, ingest_log_rejection
from jobs.models import Job
from jobs.services import job_time_out
from jobs.states import LIVE_STATES, JobState
from jobs.waiters import job_waiters
from media import storage
from photochanger.api import AsyncAPIView
from photochanger.db import db_call
from photochanger.deadlines import remaining_seconds
from photochanger.errors import FailureReason, ServiceError


class IngestRequestSerializer(serializers.Serializer[Any]):
    """The booth's request as DSLR Remote Pro sends it; any other text field is kept as job metadata."""

    fileToUpload = serializers.ImageField(required=False, help_text="The photo (JPEG, PNG, WebP, HEIC).")
    file = serializers.ImageField(required=False, help_text="Alternative name of the photo part.")
    password = serializers.CharField(help_text="The global ingest password.")
    hash = serializers.CharField(
        required=False, help_text="40 hex chars from the booth; kept, never checked."
    )
    time = serializers.CharField(required=False, help_text="Unix seconds at the booth.")
    user_id = serializers.CharField(required=False)
    id = serializers.CharField(required=False)
    profile = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    name = serializers.CharField(required=False, help_text="Booth PC name.")
    model = serializers.CharField(required=False)
    version = serializers.CharField(required=False, help_text="DSLR Remote Pro version, e.g. 3.30.2.")


class ErrorSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["error", "timeout"])
    failure_reason = serializers.ChoiceField(choices=FailureReason.values)
    message = serializers.CharField()
    job_id = serializers.UUIDField(required=False)
    retry_after = serializers.IntegerField(required=False)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


@dataclass(frozen=True)
class IngestOutcome:
    job_id: uuid.UUID
    state: str
    failure_message: str
    result: bytes | None
    result_mime_type: str


def ingest_outcome(*, job_id: uuid.UUID) -> IngestOutcome:
    """Read the job (the only source of truth); at or past the deadline, time it out if still live."""
    for _attempt in range(2):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT state, expires_at, failure_message, result_path, result_mime_type FROM jobs_job WHERE id = %s",
                [job_id],
            )
            state, expires_at, failure_message, result_path, result_mime_type = cursor.fetchone()
        if state in LIVE_STATES and timezone.now() >= expires_at:
            job_time_out(job_id=job_id)
            continue  # re-read: we, a worker or cleanup finalized it just now
        break
    result = None
    if state == JobState.SUCCEEDED and result_path:
        try:
            result = storage.read(result_path)
        except FileNotFoundError:
            result = None
    return IngestOutcome(
        job_id=job_id,
        state=state,
        failure_message=failure_message,
        result=result,
        result_mime_type=result_mime_type,
    )


def _client_ip(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class IngestView(AsyncAPIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="ingest_photo",
        summary="Process one booth photo and answer with the result image",
        description=(
            "Held open until the job is final or the sync window (default 48 s) ends. "
            "`Expect: 100-continue` is supported. Unknown extra text fields are kept as job metadata."
        ),
        parameters=[
            OpenApiParameter("slot_id", str, OpenApiParameter.PATH, description="slot-001 … slot-015")
        ],
        request={"multipart/form-data": IngestRequestSerializer},
        responses={
            (200, "image/*"): OpenApiResponse(
                response=OpenApiTypes.BINARY,
                description="The processed image; headers X-Job-Id and Cache-Control: no-store.",
            ),
            400: _error("invalid_request"),
            401: _error("invalid_password"),
            404: _error("slot_not_found, slot_disabled"),
            413: _error("payload_too_large"),
            415: _error("unsupported_media_type"),
            429: _error("rate_limited"),
            500: _error("internal_error"),
            502: _error("provider_error"),
            503: _error("service_unavailable"),
            504: _error("provider_timeout"),
        },
    )
    async def post(self, request: Request, slot_id: str) -> HttpResponse:
        if job_waiters.held >= settings.INGEST_MAX_HELD_REQUESTS:
            error = ServiceError(
                FailureReason.SERVICE_UNAVAILABLE, "Too many requests in flight.", retry_after=5
            )
            await db_call(
                ingest_log_rejection,
                slot_id=slot_id,
                reason=error.reason,
                client_ip=_client_ip(request),
                duration_ms=0,
            )
            raise error
        job_id = uuid.uuid4()
        job_waiters.register(job_id)
        try:
            try:
                expires_at = await db_call(
                    ingest_accept,
                    job_id=job_id,
                    slot_id=slot_id,
                    request=request,
                    client_ip=_client_ip(request),
                )
            finally:
                # The photo is stored; free the body and upload buffers now, not after the long wait
                # (a thousand held requests would otherwise keep a thousand photos in memory), and let
                # the next upload in (photochanger.asgi.IntakeGate).
                request._request.close()
                gate = request._request.scope.get("photochanger.intake_gate")  # type: ignore[attr-defined]
                if gate is not None:
                    gate.release()
            while True:
                await job_waiters.wait(job_id, remaining_seconds(deadline=expires_at, now=timezone.now()))
                outcome = await db_call(ingest_outcome, job_id=job_id)
                if outcome.state not in LIVE_STATES:
                    break
                # Woken early (a stray notification) or clocks disagree by a hair: wait again.
                job_waiters.register(job_id)
        finally:
            job_waiters.discard(job_id)
        return _respond(outcome)


def _respond(outcome: IngestOutcome) -> HttpResponse:
    job_id = str(outcome.job_id)
    if outcome.state == JobState.SUCCEEDED and outcome.result is not None:
        return HttpResponse(
            outcome.result,
            content_type=outcome.result_mime_type,
            headers={"Cache-Control": "no-store", "X-Job-Id": job_id},
        )
    if outcome.state == JobState.TIMEOUT:
        raise ServiceError(FailureReason.PROVIDER_TIMEOUT, job_id=job_id)
    if outcome.state == JobState.CANCELLED:
        raise ServiceError(
            FailureReason.SERVICE_UNAVAILABLE, "The job was cancelled by staff.", job_id=job_id
        )
    if outcome.state == JobState.SUCCEEDED:
        raise ServiceError(FailureReason.INTERNAL_ERROR, "The stored result is missing.", job_id=job_id)
    raise ServiceError(
        FailureReason.PROVIDER_ERROR,
        f"The AI provider could not process the photo: {outcome.failure_message}"[:300],
        job_id=job_id,
    )


@dataclass(frozen=True)
class PublicResult:
    data: bytes
    mime_type: str
    filename: str


def public_result_get(*, job_id: str) -> PublicResult:
    """The stored result of a job while it is retained; ``not_found`` / ``gone`` otherwise."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        raise ServiceError(FailureReason.NOT_FOUND) from None
    job = (
        Job.objects.filter(id=parsed)
        .only("id", "state", "result_path", "result_mime_type", "result_expires_at", "result_deleted_at")
        .first()
    )
    if job is None or job.state != JobState.SUCCEEDED or not job.result_path:
        raise ServiceError(FailureReason.NOT_FOUND, "No result is stored for this job.")
    if job.result_deleted_at is not None or (
        job.result_expires_at and job.result_expires_at <= timezone.now()
    ):
        raise ServiceError(FailureReason.GONE, "This result has expired and was deleted.")
    try:
        data = storage.read(job.result_path)
    except FileNotFoundError:
        raise ServiceError(FailureReason.GONE, "This result has expired and was deleted.") from None
    extension = job.result_path.rsplit(".", 1)[-1]
    return PublicResult(
        data=data, mime_type=job.result_mime_type, filename=f"photochanger-{job.id}.{extension}"
    )


class PublicResultView(AsyncAPIView):
    @extend_schema(
        operation_id="download_result",
        summary="Download a job's result while it is retained (default 72 h)",
        parameters=[
            OpenApiParameter("job_id", str, OpenApiParameter.PATH, description="Job UUID (X-Job-Id)")
        ],
        responses={
            (200, "image/*"): OpenApiResponse(
                response=OpenApiTypes.BINARY, description="Content-Disposition: attachment"
            ),
            404: _error("not_found"),
            410: _error("gone"),
        },
    )
    async def get(self, request: Request, job_id: str) -> HttpResponse:
        result = await db_call(public_result_get, job_id=job_id)
        return HttpResponse(
            result.data,
            content_type=result.mime_type,
            headers={
                "Content-Disposition": f'attachment; filename="{result.filename}"',
                "Cache-Control": "private, max-age=3600",
            },
        )


@extend_schema_view(
    post=extend_schema(
        operation_id="ingest_photo_legacy",
        summary="Same as POST /ingest/{slot_id}, for booths configured with the older path",
    )
)
class LegacyIngestView(IngestView):
    pass
