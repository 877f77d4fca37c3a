"""The booth-facing endpoints: ``POST /ingest/<slot_id>`` and ``GET /public/results/<job_id>``.

Async views (``adrf``) served by ``photochanger.asgi.BoothPaths``; the work is in ``jobs.ingest``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adrf.views import APIView
from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request

from jobs.ingest import IngestOutcome, ingest_accept, ingest_log_rejection, ingest_outcome_get
from jobs.models import Job
from jobs.share import share_url
from jobs.states import LIVE_STATES, JobState
from jobs.waiters import job_waiters
from media import storage
from media.downloads import stored_file_response
from photochanger.api import error_schema
from photochanger.db import db_call
from photochanger.deadlines import remaining_seconds
from photochanger.errors import FailureReason, ServiceError
from photochanger.intake import received_at


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


def _client_ip(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


INGEST_SCHEMA: dict[str, Any] = {
    "summary": "Process one booth photo and answer with the result image",
    "description": (
        "Held open until the job is final or the sync window (default 48 s, counted from when the "
        "request arrived) ends. `Expect: 100-continue` is supported. Unknown extra text fields are "
        "kept as job metadata."
    ),
    "parameters": [
        OpenApiParameter("slot_id", str, OpenApiParameter.PATH, description="slot-001 … slot-015")
    ],
    "request": {"multipart/form-data": IngestRequestSerializer},
    "responses": {
        (200, "image/*"): OpenApiResponse(
            response=OpenApiTypes.BINARY,
            description=(
                "The processed image; headers X-Job-Id, X-Share-Url (the guest's share page of the "
                "result, /s/<token>) and Cache-Control: no-store."
            ),
        ),
        400: error_schema("invalid_request"),
        401: error_schema("invalid_password"),
        404: error_schema("slot_not_found, slot_disabled"),
        408: error_schema("request_timeout (the body took longer than the body timeout)"),
        413: error_schema("payload_too_large (bytes or pixels)"),
        415: error_schema("unsupported_media_type (not an image, or a damaged one)"),
        429: error_schema("rate_limited"),
        500: error_schema("internal_error"),
        502: error_schema("provider_error (the provider failed, or its result is not a usable image)"),
        503: error_schema("service_unavailable (database down, saturated, shutting down, or disk full)"),
        504: error_schema("provider_timeout"),
    },
}


class IngestView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(operation_id="ingest_photo", **INGEST_SCHEMA)
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
        # Registered before the job exists, so its notification cannot be missed.
        job_waiters.register(job_id)
        try:
            expires_at = await ingest_accept(
                job_id=job_id,
                slot_id=slot_id,
                request=request,
                client_ip=_client_ip(request),
                received_at=received_at(request),
            )
            while True:
                await job_waiters.wait(job_id, remaining_seconds(deadline=expires_at, now=timezone.now()))
                outcome = await db_call(ingest_outcome_get, job_id=job_id)
                if outcome.state not in LIVE_STATES:
                    break
                # Woken early (a stray notification) or clocks disagree by a hair: wait again.
                job_waiters.register(job_id)
        finally:
            job_waiters.discard(job_id)
        return await _respond(outcome)


async def _respond(outcome: IngestOutcome) -> HttpResponse:
    job_id = str(outcome.job_id)
    if outcome.state == JobState.SUCCEEDED:
        try:
            # Read from the store in a thread of its own: on S3 this is a round trip, not CPU work.
            image = outcome.result or await asyncio.to_thread(storage.read, outcome.result_path)
        except FileNotFoundError:
            raise ServiceError(
                FailureReason.INTERNAL_ERROR, "The stored result is missing.", job_id=job_id
            ) from None
        except storage.StoreUnavailable:
            raise ServiceError(
                FailureReason.SERVICE_UNAVAILABLE, "The media store is unavailable.", job_id=job_id
            ) from None
        headers = {"Cache-Control": "no-store", "X-Job-Id": job_id}
        if outcome.share_token:
            headers["X-Share-Url"] = share_url(outcome.share_token)
        return HttpResponse(image, content_type=outcome.result_mime_type, headers=headers)
    if outcome.state == JobState.TIMEOUT:
        raise ServiceError(FailureReason.PROVIDER_TIMEOUT, job_id=job_id)
    if outcome.state == JobState.CANCELLED:
        raise ServiceError(
            FailureReason.SERVICE_UNAVAILABLE, "The job was cancelled by staff.", job_id=job_id
        )
    if outcome.failure_reason == FailureReason.SERVICE_UNAVAILABLE:
        # Our side failed, not the provider (the result could not be stored: a full disk, S3 down).
        raise ServiceError(FailureReason.SERVICE_UNAVAILABLE, outcome.failure_message[:300], job_id=job_id)
    raise ServiceError(
        FailureReason.PROVIDER_ERROR,
        f"The AI provider could not process the photo: {outcome.failure_message}"[:300],
        job_id=job_id,
    )


@dataclass(frozen=True)
class StoredResultFile:
    path: str
    mime_type: str
    size_bytes: int | None
    filename: str
    expires_at: datetime | None


def public_result_get(*, job_id: str) -> StoredResultFile:
    """Where a job's result is stored while it is retained; ``not_found`` / ``gone`` otherwise."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        raise ServiceError(FailureReason.NOT_FOUND) from None
    job = (
        Job.objects.filter(id=parsed)
        .only(
            "id",
            "state",
            "result_path",
            "result_mime_type",
            "result_size_bytes",
            "result_expires_at",
            "result_deleted_at",
            "expires_at",
            "late_result_grace_seconds",
        )
        .first()
    )
    if job is None:
        raise ServiceError(FailureReason.NOT_FOUND, "No result is stored for this job.")
    late_until = job.expires_at + timedelta(seconds=job.late_result_grace_seconds)
    if job.state in LIVE_STATES or (
        job.state == JobState.TIMEOUT and not job.result_path and timezone.now() < late_until
    ):
        # A late result may still arrive (jobs.late_results): the booth's 504 carried this job id.
        raise ServiceError(FailureReason.NOT_FOUND, "No result yet: it is not ready yet.")
    if job.state not in (JobState.SUCCEEDED, JobState.TIMEOUT) or not job.result_path:
        raise ServiceError(FailureReason.NOT_FOUND, "No result is stored for this job.")
    if job.result_deleted_at is not None or (
        job.result_expires_at and job.result_expires_at <= timezone.now()
    ):
        raise ServiceError(FailureReason.GONE, "This result has expired and was deleted.")
    extension = job.result_path.rsplit(".", 1)[-1]
    return StoredResultFile(
        path=job.result_path,
        mime_type=job.result_mime_type,
        size_bytes=job.result_size_bytes,
        filename=f"photochanger-{job.id}.{extension}",
        expires_at=job.result_expires_at,
    )


def public_result_redirect_url(result: StoredResultFile) -> str | None:
    """With ``S3_PRESIGNED_DOWNLOADS`` on S3: a presigned URL of the result, valid
    ``S3_PRESIGNED_EXPIRY_SECONDS`` and never past the result's retention; None: stream it ourselves."""
    if not storage.presigned_downloads():
        return None
    expires_in = settings.S3_PRESIGNED_EXPIRY_SECONDS
    if result.expires_at is not None:
        left = remaining_seconds(deadline=result.expires_at, now=timezone.now())
        expires_in = min(expires_in, int(left))
    return storage.presigned_url(
        result.path, expires_in=expires_in, filename=result.filename, mime_type=result.mime_type
    )


class PublicResultView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(
        operation_id="download_result",
        summary="Download a job's result while it is retained (default 72 h)",
        description=(
            "Streamed from the media store, or, with S3_PRESIGNED_DOWNLOADS on S3, a 302 to a presigned "
            "URL of the bucket valid a few minutes (never past the retention). Also a late result: after a "
            "504 (whose body carries job_id) the provider's answer may still arrive within the studio's "
            "late-result grace; until then this answers 404 not_found (not ready yet)."
        ),
        parameters=[
            OpenApiParameter("job_id", str, OpenApiParameter.PATH, description="Job UUID (X-Job-Id)")
        ],
        responses={
            (200, "image/*"): OpenApiResponse(
                response=OpenApiTypes.BINARY, description="Content-Disposition: attachment"
            ),
            302: OpenApiResponse(
                description="S3_PRESIGNED_DOWNLOADS: Location is a short-lived presigned URL of the result"
            ),
            404: error_schema("not_found"),
            410: error_schema("gone"),
            503: error_schema("service_unavailable (the media store cannot be reached)"),
        },
    )
    async def get(self, request: Request, job_id: str) -> HttpResponse | StreamingHttpResponse:
        result = await db_call(public_result_get, job_id=job_id)
        # Signing is local (no request to the store); a thread all the same: boto3 sets up its client
        # (JSON models, credentials) on a thread's first use.
        redirect_to = await asyncio.to_thread(public_result_redirect_url, result)
        if redirect_to is not None:
            # The URL expires: nobody may keep this answer.
            return HttpResponseRedirect(redirect_to, headers={"Cache-Control": "no-store"})
        try:
            return await stored_file_response(
                path=result.path,
                mime_type=result.mime_type,
                size_bytes=result.size_bytes,
                headers={
                    "Content-Disposition": f'attachment; filename="{result.filename}"',
                    "Cache-Control": "private, max-age=3600",
                },
            )
        except FileNotFoundError:
            raise ServiceError(FailureReason.GONE, "This result has expired and was deleted.") from None
        except storage.StoreUnavailable:
            raise ServiceError(
                FailureReason.SERVICE_UNAVAILABLE, "The media store is unavailable.", retry_after=5
            ) from None


class LegacyIngestView(IngestView):
    @extend_schema(
        operation_id="ingest_photo_legacy",
        **{
            **INGEST_SCHEMA,
            "summary": "Same as POST /ingest/{slot_id}, for booths configured with the older path",
        },
    )
    async def post(self, request: Request, slot_id: str) -> HttpResponse:
        return await super().post(request, slot_id)
