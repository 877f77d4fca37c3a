"""Admin login throttling with django-axes: who the client is, the lockout page, and unlocking.

Wrong logins are counted per client address in the database (axes' ``AccessAttempt``), so every web
process sees the same count; ``settings.AXES_*`` set the limit and the lockout time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone


def client_ip_address(request: HttpRequest) -> str | None:
    """The client as axes counts it: ``REMOTE_ADDR`` only.

    A forwarded header is whatever the client wrote; behind a proxy, uvicorn's ``--proxy-headers``
    with ``--forwarded-allow-ips`` puts the real client in ``REMOTE_ADDR`` from the proxy's header.
    """
    return request.META.get("REMOTE_ADDR") or None


def lockout_minutes() -> int:
    return max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """The page a locked-out client gets instead of the login form (429), in the admin's look."""
    context = {
        **admin.site.each_context(request),
        "title": "",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "lockout_minutes": lockout_minutes(),
    }
    response = TemplateResponse(
        request, "admin/login_locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
    )
    response.render()
    return response


def login_locked_until(*, attempt: AccessAttempt, now: datetime | None = None) -> datetime | None:
    """When the lockout of this attempt's client ends, or None when it is not locked out."""
    if attempt.failures_since_start < settings.AXES_FAILURE_LIMIT:
        return None
    until: datetime = attempt.attempt_time + settings.AXES_COOLOFF_TIME
    return until if until > (now or timezone.now()) else None


def login_lockouts_release(*, ip_addresses: Iterable[str | None]) -> int:
    """Forget every failed login from these client addresses: a locked-out one can log in at once.

    Returns how many addresses were released. Safe to repeat (a released address has nothing left).
    """
    released = 0
    for ip_address in sorted({address for address in ip_addresses if address}):
        # Never axes' reset() without an address: with no filter it forgets everybody's failures.
        axes_reset(ip=ip_address)
        released += 1
    return released
