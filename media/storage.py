"""Files under MEDIA_ROOT: job inputs, results, templates. Paths stored in the database are relative.

Writes are atomic (temporary file + rename) so a reader never sees half a file, and a crash never
leaves a partial result that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path

from django.conf import settings

from media.images import extension_for

INPUTS_DIR = "inputs"
RESULTS_DIR = "results"


def absolute(relative_path: str) -> Path:
    root = Path(settings.MEDIA_ROOT)
    path = (root / relative_path).resolve()
    if root.resolve() not in path.parents:
        raise ValueError("path escapes MEDIA_ROOT")
    return path


def input_path(job_id: uuid.UUID, mime_type: str) -> str:
    return f"{INPUTS_DIR}/{job_id}.{extension_for(mime_type)}"


def result_path(job_id: uuid.UUID, mime_type: str) -> str:
    return f"{RESULTS_DIR}/{job_id}.{extension_for(mime_type)}"


def write_atomic(relative_path: str, data: bytes) -> str:
    """Write ``data`` to MEDIA_ROOT/relative_path atomically; returns its SHA-256."""
    target = absolute(relative_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest()


def read(relative_path: str) -> bytes:
    return absolute(relative_path).read_bytes()


def delete(relative_path: str) -> bool:
    """Remove a file; True if it existed. Missing files are fine (another process got there first)."""
    if not relative_path:
        return False
    try:
        absolute(relative_path).unlink()
    except FileNotFoundError:
        return False
    return True
