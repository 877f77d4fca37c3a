"""The generated contract files under ``spec/``: OpenAPI from the DRF views, the error catalogue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings

from photochanger.errors import DEFAULT_MESSAGES, HTTP_STATUS, FailureReason

SPEC_DIR = Path(settings.BASE_DIR) / "spec"


def drop_trailing_slash_aliases(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """drf-spectacular preprocessing hook: a path that only repeats another with a trailing slash
    (``/ingest/{slot_id}/``) is an alias for booth set-ups, not a second operation to document."""
    paths = {path for path, *_rest in endpoints}
    return [
        endpoint for endpoint in endpoints if not (endpoint[0].endswith("/") and endpoint[0][:-1] in paths)
    ]


def openapi_document() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(json.dumps(schema, default=str))


def error_catalogue() -> dict[str, Any]:
    return {
        "description": "Every failure_reason the API answers with, its HTTP status and default message.",
        "body": {
            "status": "error | timeout",
            "failure_reason": "<code>",
            "message": "<text>",
            "job_id": "<uuid, when a job exists>",
            "retry_after": "<seconds, with 429/503>",
        },
        "errors": [
            {
                "failure_reason": str(reason),
                "http_status": HTTP_STATUS[reason],
                "message": DEFAULT_MESSAGES[reason],
            }
            for reason in FailureReason
        ],
    }


def rendered_contracts() -> dict[str, str]:
    return {
        "openapi.json": json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n",
        "errors.json": json.dumps(error_catalogue(), indent=2) + "\n",
    }
