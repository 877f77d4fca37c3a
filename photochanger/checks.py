"""System checks for configuration mistakes, with stable ids (photochanger.E00x / W00x)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.checks import Tags as DjangoTags

_DEVELOPMENT_SECRET_PREFIX = "photochanger-development-only"  # noqa: S105


@register(DjangoTags.security, deploy=True)
def check_secret_key(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if settings.SECRET_KEY.startswith(_DEVELOPMENT_SECRET_PREFIX):
        return [
            Error(
                "SECRET_KEY is the development default.",
                hint="Set SECRET_KEY in the environment (50+ random characters).",
                id="photochanger.E001",
            )
        ]
    return []


@register()
def check_sync_window_bounds(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    low, high = settings.SYNC_RESPONSE_MIN_SECONDS, settings.SYNC_RESPONSE_MAX_SECONDS
    if not 1 <= low <= high:
        return [
            Error(
                f"SYNC_RESPONSE_MIN_SECONDS={low} must be between 1 and {high}.",
                id="photochanger.E002",
            )
        ]
    if low < 45 and not settings.DEBUG:
        return [
            Warning(
                f"SYNC_RESPONSE_MIN_SECONDS={low} allows sync windows below 45 s in production.",
                hint="Booths time out after about 50 s; the override is meant for tests and demos.",
                id="photochanger.W001",
            )
        ]
    return []


@register()
def check_public_base_url(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    url = settings.PUBLIC_BASE_URL
    if not url.startswith(("http://", "https://")):
        return [
            Error(
                f"PUBLIC_BASE_URL={url!r} must be an absolute http(s) URL.",
                hint="Booths and providers reach the service at this address.",
                id="photochanger.E003",
            )
        ]
    return []


@register()
def check_field_encryption_key(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    key = settings.FIELD_ENCRYPTION_KEY
    if not key:
        return []
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode())
    except ValueError:
        return [
            Error(
                "FIELD_ENCRYPTION_KEY is not a valid Fernet key.",
                hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'",
                id="photochanger.E004",
            )
        ]
    return []


@register(DjangoTags.security, deploy=True)
def check_debug_off(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG:
        return [Warning("DEBUG is on.", hint="Set DEBUG=false in production.", id="photochanger.W002")]
    return []
