"""Files under MEDIA_ROOT: job inputs, results, templates. Paths stored in the database are relative.

Every function here blocks on the disk: async code (the worker) calls them in a thread.

Every file gets a fresh, unique name (the job id) and is referenced by a database row only after it
is fully written, so readers never see half a file; no temporary file and rename are needed. A write
that fails (a full disk) removes its file; ``not_stored`` turns the error into the catalogue's 503.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings

from media.images import extension_for
from photochanger.errors import FailureReason, ServiceError

logger = logging.getLogger(__name__)

INPUTS_DIR = "inputs"
RESULTS_DIR = "results"
THUMBNAILS_DIR = "thumbnails"


def absolute(relative_path: str) -> Path:
    # Paths come from our own rows, but refuse anything that could point outside MEDIA_ROOT anyway.
    if relative_path.startswith("/") or ".." in relative_path.split("/"):
        raise ValueError("path escapes MEDIA_ROOT")
    return Path(settings.MEDIA_ROOT) / relative_path


def input_path(job_id: uuid.UUID, mime_type: str) -> str:
    return f"{INPUTS_DIR}/{job_id}.{extension_for(mime_type)}"


def result_path(job_id: uuid.UUID, mime_type: str) -> str:
    # A suffix per attempt: a re-claimed job's second worker never collides with a first that lived on.
    return f"{RESULTS_DIR}/{job_id}-{secrets.token_hex(4)}.{extension_for(mime_type)}"


def thumbnail_path(job_id: uuid.UUID, kind: str) -> str:
    """A new name for one of a job's staff previews (``kind``: ``input`` or ``result``), always a JPEG."""
    # A suffix per attempt, as for results: a re-claimed job's thumbnails never collide.
    return f"{THUMBNAILS_DIR}/{job_id}-{kind}-{secrets.token_hex(4)}.jpg"


@contextlib.contextmanager
def _new_file(relative_path: str) -> Iterator[BinaryIO]:
    """MEDIA_ROOT/relative_path opened for writing, created (never overwritten) with its folder if needed;
    removed again if the writing fails, so no partial file is ever left behind."""
    target = absolute(relative_path)
    try:
        handle = open(target, "xb")
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = open(target, "xb")
    try:
        with handle:
            yield handle
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def write_new(relative_path: str, data: bytes) -> str:
    """Create MEDIA_ROOT/relative_path with ``data`` (refusing to overwrite); returns its SHA-256."""
    with _new_file(relative_path) as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def read(relative_path: str) -> bytes:
    return absolute(relative_path).read_bytes()


def open_read(relative_path: str) -> BinaryIO:
    """The file opened for reading in binary mode (the caller closes it)."""
    return open(absolute(relative_path), "rb")


def size(relative_path: str) -> int:
    return absolute(relative_path).stat().st_size


def delete(relative_path: str) -> bool:
    """Remove a file; True if it existed. Missing files are fine (another process got there first)."""
    if not relative_path:
        return False
    try:
        absolute(relative_path).unlink()
    except FileNotFoundError:
        return False
    return True


COPY_CHUNK_BYTES = 1024 * 1024


class ReadableFile(Protocol):
    """What is read from: an open file, an uploaded file."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


def write_new_from(relative_path: str, source: ReadableFile) -> int:
    """Like ``write_new`` for a file object, copied in chunks (a DSLR photo is never held twice).

    Returns the number of bytes written; a failed copy leaves no partial file behind.
    """
    written = 0
    with _new_file(relative_path) as handle:
        source.seek(0)
        while chunk := source.read(COPY_CHUNK_BYTES):
            handle.write(chunk)
            written += len(chunk)
    return written


# A full disk, or a full quota on it.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def not_stored(error: OSError, what: str) -> ServiceError:
    """The catalogue's 503 for ``what`` ("the photo", "the result", "the upload") that could not be
    written (the disk is full or failing); logged for ops with the path (never the bytes)."""
    logger.error("%s not stored: %s (%s)", what, error.strerror or error, error.filename or "")
    if error.errno in DISK_FULL_ERRNOS:
        message = f"The server's disk is full: {what} could not be stored."
    else:
        message = f"The server could not store {what} ({error.strerror or error.__class__.__name__})."
    return ServiceError(FailureReason.SERVICE_UNAVAILABLE, message)
