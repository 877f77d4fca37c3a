"""API plumbing shared by every DRF view: async dispatch and the one exception handler.

``AsyncAPIView`` runs DRF's request set-up inline on the event loop (no thread hop: the views that use
it have no database-backed authentication) and awaits ``async def`` handlers, so a held booth request is
a coroutine, not a thread.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from photochanger.errors import FailureReason, ServiceError

logger = logging.getLogger(__name__)


class AsyncAPIView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    view_is_async = True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return self._async_dispatch(request, *args, **kwargs)

    async def _async_dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.args = args
        self.kwargs = kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request, *args, **kwargs)
            handler = getattr(self, (drf_request.method or "").lower(), None)
            if (
                drf_request.method is None
                or drf_request.method.lower() not in self.http_method_names
                or handler is None
            ):
                raise exceptions.MethodNotAllowed(drf_request.method or "")
            response = await handler(drf_request, *args, **kwargs)
        except Exception as error:
            response = self.handle_exception(error)
        self.response = self.finalize_response(drf_request, response, *args, **kwargs)
        return self.response


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
