"""``GET /public/media/<id>``: temporary links to inputs and templates for providers that fetch by URL."""

from __future__ import annotations

from typing import Any

from adrf.views import APIView
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request

from media.downloads import stored_file_response
from media.services import public_media_get
from media.storage import StoreUnavailable
from photochanger.api import error_schema
from photochanger.db import db_call
from photochanger.errors import FailureReason, ServiceError


class PublicMediaView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(
        operation_id="download_temporary_media",
        summary="A temporary link to a job's photo or template, for providers that download by URL",
        description="Valid until min(job deadline, created + public link TTL); 410 afterwards. Never lists anything.",
        parameters=[OpenApiParameter("media_id", str, OpenApiParameter.PATH, description="Random link id")],
        responses={
            (200, "image/*"): OpenApiResponse(response=OpenApiTypes.BINARY),
            404: error_schema("not_found"),
            410: error_schema("gone"),
            503: error_schema("service_unavailable (the media store cannot be reached)"),
        },
    )
    async def get(self, request: Request, media_id: str) -> HttpResponse | StreamingHttpResponse:
        media = await db_call(public_media_get, media_id=media_id)
        # Streamed from the media store (the disk or the bucket) through this process, so the link dies
        # exactly when its row says, whatever the store.
        try:
            return await stored_file_response(
                path=media.path,
                mime_type=media.mime_type,
                size_bytes=media.size_bytes,
                headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
            )
        except FileNotFoundError:
            raise ServiceError(FailureReason.GONE, "This link has expired.") from None
        except StoreUnavailable:
            raise ServiceError(
                FailureReason.SERVICE_UNAVAILABLE, "The media store is unavailable.", retry_after=5
            ) from None
