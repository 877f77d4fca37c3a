"""The error catalogue of the brief: every failure the service reports, its HTTP status and wording.

Domain code raises ``ServiceError(FailureReason.X)``; one DRF exception handler (``photochanger.api``)
turns it into ``{"status", "failure_reason", "message"}``. ``spec/errors.json`` is generated from here.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class FailureReason(models.TextChoices):
    INVALID_REQUEST = "invalid_request", _("Invalid request")
    INVALID_PASSWORD = "invalid_password", _("Invalid password")
    SLOT_NOT_FOUND = "slot_not_found", _("Slot not found")
    SLOT_DISABLED = "slot_disabled", _("Slot disabled")
    PAYLOAD_TOO_LARGE = "payload_too_large", _("Payload too large")
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", _("Unsupported media type")
    RATE_LIMITED = "rate_limited", _("Rate limited")
    PROVIDER_ERROR = "provider_error", _("Provider error")
    SERVICE_UNAVAILABLE = "service_unavailable", _("Service unavailable")
    PROVIDER_TIMEOUT = "provider_timeout", _("Provider timeout")
    INTERNAL_ERROR = "internal_error", _("Internal error")
    # Public download endpoints (results, temporary media links).
    NOT_FOUND = "not_found", _("Not found")
    GONE = "gone", _("Gone")
    METHOD_NOT_ALLOWED = "method_not_allowed", _("Method not allowed")
    REQUEST_TIMEOUT = "request_timeout", _("Request timeout")


HTTP_STATUS: dict[FailureReason, int] = {
    FailureReason.INVALID_REQUEST: 400,
    FailureReason.INVALID_PASSWORD: 401,
    FailureReason.SLOT_NOT_FOUND: 404,
    FailureReason.SLOT_DISABLED: 404,
    FailureReason.PAYLOAD_TOO_LARGE: 413,
    FailureReason.UNSUPPORTED_MEDIA_TYPE: 415,
    FailureReason.RATE_LIMITED: 429,
    FailureReason.PROVIDER_ERROR: 502,
    FailureReason.SERVICE_UNAVAILABLE: 503,
    FailureReason.PROVIDER_TIMEOUT: 504,
    FailureReason.INTERNAL_ERROR: 500,
    FailureReason.NOT_FOUND: 404,
    FailureReason.GONE: 410,
    FailureReason.METHOD_NOT_ALLOWED: 405,
    FailureReason.REQUEST_TIMEOUT: 408,
}

# Default client-facing messages (English: the booth and its operator read these, not staff).
DEFAULT_MESSAGES: dict[FailureReason, str] = {
    FailureReason.INVALID_REQUEST: "The request is missing the photo or the password, or is malformed.",
    FailureReason.INVALID_PASSWORD: "The ingest password is wrong.",
    FailureReason.SLOT_NOT_FOUND: "No slot has this id.",
    FailureReason.SLOT_DISABLED: "This slot is not active.",
    FailureReason.PAYLOAD_TOO_LARGE: "The photo is larger than this slot accepts.",
    FailureReason.UNSUPPORTED_MEDIA_TYPE: "The file is not a JPEG, PNG, WebP or HEIC image.",
    FailureReason.RATE_LIMITED: "Too many requests; retry later.",
    FailureReason.PROVIDER_ERROR: "The AI provider could not process the photo.",
    FailureReason.SERVICE_UNAVAILABLE: "The service is temporarily unavailable.",
    FailureReason.PROVIDER_TIMEOUT: "No result within the response window.",
    FailureReason.INTERNAL_ERROR: "Internal error.",
    FailureReason.NOT_FOUND: "Nothing is stored under this id.",
    FailureReason.GONE: "This file has expired and was deleted.",
    FailureReason.METHOD_NOT_ALLOWED: "This HTTP method is not allowed here.",
    FailureReason.REQUEST_TIMEOUT: "The photo did not arrive in time; the upload was too slow.",
}


class ServiceError(Exception):
    """A failure from the catalogue, raised by domain code and rendered by the API layer."""

    def __init__(
        self,
        reason: FailureReason,
        message: str | None = None,
        *,
        job_id: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.reason = reason
        self.message = message or DEFAULT_MESSAGES[reason]
        self.job_id = job_id
        self.retry_after = retry_after
        super().__init__(f"{reason}: {self.message}")

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.reason]

    def body(self) -> dict[str, Any]:
        status = "timeout" if self.reason == FailureReason.PROVIDER_TIMEOUT else "error"
        payload: dict[str, Any] = {
            "status": status,
            "failure_reason": str(self.reason),
            "message": self.message,
        }
        if self.job_id:
            payload["job_id"] = self.job_id
        if self.retry_after is not None:
            payload["retry_after"] = self.retry_after
        return payload
