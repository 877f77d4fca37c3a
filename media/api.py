"""``GET /public/media/<id>``: temporary links to inputs and templates for providers that fetch by URL."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request

from jobs.api import ErrorSerializer
from media.services import public_media_get
from photochanger.api import AsyncAPIView
from photochanger.db import db_call


class PublicMediaView(AsyncAPIView):
    @extend_schema(
        operation_id="download_temporary_media",
        summary="A temporary link to a job's photo or template, for providers that download by URL",
        description="Valid until min(job deadline, created + public link TTL); 410 afterwards. Never lists anything.",
        parameters=[OpenApiParameter("media_id", str, OpenApiParameter.PATH, description="Random link id")],
        responses={
            (200, "image/*"): OpenApiResponse(response=OpenApiTypes.BINARY),
            404: OpenApiResponse(response=ErrorSerializer, description="not_found"),
            410: OpenApiResponse(response=ErrorSerializer, description="gone"),
        },
    )
    async def get(self, request: Request, media_id: str) -> HttpResponse:
        media = await db_call(public_media_get, media_id=media_id)
        return HttpResponse(
            media.data,
            content_type=media.mime_type,
            headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
        )
