"""API plumbing shared by every DRF view: the error body's serializer and the one exception handler.

Booth-facing views are ``adrf`` async API views, served by ``photochanger.asgi.BoothPaths``; staff
endpoints are plain DRF views behind the admin session.
"""

from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from photochanger.errors import FailureReason, ServiceError

logger = logging.getLogger(__name__)


class ErrorSerializer(serializers.Serializer[Any]):
    """The error body: status, failure_reason and message, plus job_id and retry_after where they apply."""

    status = serializers.ChoiceField(choices=["error", "timeout"])
    failure_reason = serializers.ChoiceField(choices=FailureReason.values)
    message = serializers.CharField()
    job_id = serializers.UUIDField(required=False)
    retry_after = serializers.IntegerField(required=False)


def error_schema(description: str) -> OpenApiResponse:
    """An OpenAPI response documenting the error body for the given failure reasons."""
    return OpenApiResponse(response=ErrorSerializer, description=description)


def error_response(error: ServiceError) -> Response:
    headers = {"Cache-Control": "no-store"}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(error.body(), status=error.http_status, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Turn every exception into the brief's error JSON; nothing escapes as an HTML 500 page."""
    if isinstance(exc, ServiceError):
        return error_response(exc)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return error_response(ServiceError(FailureReason.METHOD_NOT_ALLOWED))
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
        return error_response(ServiceError(FailureReason.INVALID_REQUEST, "Malformed request body."))
    if isinstance(
        exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed | exceptions.PermissionDenied
    ):
        return Response({"detail": str(exc.detail)}, status=exc.status_code)
    if isinstance(exc, exceptions.NotFound):
        return error_response(ServiceError(FailureReason.NOT_FOUND))
    if isinstance(exc, exceptions.APIException):
        return error_response(ServiceError(FailureReason.INVALID_REQUEST, str(exc.detail)[:300]))
    request: Request | None = context.get("request")
    logger.exception("unhandled error in %s", request.path if request is not None else "API view")
    return error_response(ServiceError(FailureReason.INTERNAL_ERROR))
