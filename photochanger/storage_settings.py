"""The media store's entry of ``STORAGES``, from the environment (read by the settings and the tests).

``MEDIA_STORAGE=filesystem`` (the default): ``MEDIA_ROOT`` on this machine. ``MEDIA_STORAGE=s3``: one
S3-compatible bucket every machine shares (AWS S3, MinIO, Yandex Object Storage) through
django-storages and boto3. A plain module (no settings, no models): the settings import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

# Presigned download URLs live this long by default (S3_PRESIGNED_EXPIRY_SECONDS).
DEFAULT_PRESIGNED_EXPIRY_SECONDS = 300
# Files opened for seeking through django-storages spool to disk above this.
S3_MAX_MEMORY_BYTES = 4 * 1024 * 1024
# A store that is down must not hold a booth for long: boto3's "standard" retries (3 attempts, backoff
# under a second or two) and a short connect timeout, then the booth gets 503 and prints its original.
S3_CLIENT_CONFIG = Config(
    signature_version="s3v4",
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=20,
    # One client serves every thread of a process (media.storage): room for all of them at once.
    max_pool_connections=64,
)


def presigned_expiry_seconds(environ: Mapping[str, str]) -> int:
    return int(environ.get("S3_PRESIGNED_EXPIRY_SECONDS") or DEFAULT_PRESIGNED_EXPIRY_SECONDS)


def media_storage_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """``STORAGES["default"]`` for these environment variables; ImproperlyConfigured on a mistake."""
    kind = environ.get("MEDIA_STORAGE") or "filesystem"
    if kind == "filesystem":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if kind != "s3":
        raise ImproperlyConfigured(f"MEDIA_STORAGE={kind!r}: use filesystem or s3.")
    bucket = environ.get("S3_BUCKET") or ""
    if not bucket:
        raise ImproperlyConfigured(
            "MEDIA_STORAGE=s3 needs S3_BUCKET (and usually S3_ENDPOINT_URL, S3_REGION)."
        )
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            # Unset: AWS itself. MinIO, Yandex (https://storage.yandexcloud.net), the tests' moto server.
            "endpoint_url": environ.get("S3_ENDPOINT_URL") or None,
            "region_name": environ.get("S3_REGION") or None,
            # Unset: boto3's own chain (an instance role, ~/.aws, AWS_* variables).
            "access_key": environ.get("S3_ACCESS_KEY_ID") or None,
            "secret_key": environ.get("S3_SECRET_ACCESS_KEY") or None,
            # signature s3v4; addressing path-style for a custom endpoint (botocore's choice), which
            # MinIO, Yandex and moto accept.
            "client_config": S3_CLIENT_CONFIG,
            # Objects stay private (the bucket's policy); downloads go through us or a presigned URL.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": presigned_expiry_seconds(environ),
            # Every name is new (a job id and a random suffix): no existence check before each upload.
            "file_overwrite": True,
            "max_memory_size": S3_MAX_MEMORY_BYTES,
        },
    }
