"""The media store: job inputs, results, templates and thumbnails, through Django's storage API.

The store is Django's ``default`` storage (``STORAGES`` in the settings): ``FileSystemStorage`` under
``MEDIA_ROOT`` on one machine, or ``storages.backends.s3.S3Storage`` on a bucket every machine shares
(``MEDIA_STORAGE=s3``). Names are relative (``results/<job>-<suffix>.png``) and stored as such in the
database. This module is the only code that touches the store.

Every function here blocks on the disk or the network: async code calls them in a thread.

Every file gets a fresh, unique name (the job id, a random suffix) and is referenced by a database row
only after it is fully written, so readers never see half a file. On the filesystem a photo is moved
(an upload Django spooled to disk) or written once; on S3 it is uploaded from the file it came in, and
read back as a stream, so a DSLR photo is never held in memory whole where it was not before. A write
that fails (a full disk, S3 down) leaves no file; ``not_stored`` turns the error into the catalogue's 503.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages
from storages.backends.s3 import S3Storage

from media.images import extension_for
from photochanger.errors import FailureReason, ServiceError

logger = logging.getLogger(__name__)

INPUTS_DIR = "inputs"
RESULTS_DIR = "results"
THUMBNAILS_DIR = "thumbnails"
# Files opened for seeking (Pillow) from a remote store are held in memory up to this, then on disk.
SPOOL_MEMORY_BYTES = 4 * 1024 * 1024
COPY_CHUNK_BYTES = 1024 * 1024
STREAM_BUFFER_BYTES = 64 * 1024


class StoreUnavailable(OSError):
    """The media store could not be reached or refused the request (S3 down, wrong key or bucket).

    An ``OSError``, like a failing disk, so code that copes with one copes with the other: ``not_stored``
    (ingest, the worker's result) and the downloads answer 503 ``service_unavailable``.
    """


@contextlib.contextmanager
def _store_errors(relative_path: str) -> Iterator[None]:
    """boto3's errors as the filesystem's: FileNotFoundError for a missing object, else StoreUnavailable."""
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            raise FileNotFoundError(relative_path) from None
        raise StoreUnavailable(f"the media store refused the request: {code or error}") from error
    except BotoCoreError as error:
        raise StoreUnavailable(f"the media store is unreachable: {error.__class__.__name__}") from error


def media_storage() -> Storage:
    """The configured store (Django keeps one instance per process; settings changes in tests reset it)."""
    return storages["default"]


def is_local() -> bool:
    """True when files are on this machine's disk (reading one costs microseconds, not a round trip)."""
    return _local_path(media_storage(), INPUTS_DIR) is not None


def checked(relative_path: str) -> str:
    # Names come from our own rows, but refuse anything that could point outside the store anyway.
    if not relative_path or relative_path.startswith("/") or ".." in relative_path.split("/"):
        raise ValueError("path escapes the media store")
    return relative_path


def _local_path(backend: Storage, name: str) -> str | None:
    """The file's path on this machine, or None for a remote store (only the filesystem store has one)."""
    return backend.path(name) if isinstance(backend, FileSystemStorage) else None


def input_path(job_id: uuid.UUID, mime_type: str) -> str:
    return f"{INPUTS_DIR}/{job_id}.{extension_for(mime_type)}"


def result_path(job_id: uuid.UUID, mime_type: str) -> str:
    # A suffix per attempt: a re-claimed job's second worker never collides with a first that lived on.
    return f"{RESULTS_DIR}/{job_id}-{secrets.token_hex(4)}.{extension_for(mime_type)}"


def thumbnail_path(job_id: uuid.UUID, kind: str) -> str:
    """A new name for one of a job's staff previews (``kind``: ``input`` or ``result``), always a JPEG."""
    # A suffix per attempt, as for results: a re-claimed job's thumbnails never collide.
    return f"{THUMBNAILS_DIR}/{job_id}-{kind}-{secrets.token_hex(4)}.jpg"


# --- writing ------------------------------------------------------------------------------------------


def _save_new(relative_path: str, content: File[Any]) -> None:
    """Store ``content`` under exactly ``relative_path``; FileExistsError if the filesystem has one there.

    A failed write leaves nothing behind; StoreUnavailable when S3 cannot be reached.
    On S3 names are never checked first (``file_overwrite``): ours are unique, and a check would cost a
    round trip per file.
    """
    backend = media_storage()
    name = checked(relative_path)
    try:
        with _store_errors(relative_path):
            saved = backend.save(name, content)
    except BaseException:
        if _local_path(backend, name) is not None:
            # Django's filesystem storage leaves what it wrote; an S3 upload that fails leaves nothing.
            with contextlib.suppress(OSError):
                backend.delete(name)
        raise
    if saved != name:
        # The filesystem storage picked another name because ours was taken: refuse, as "xb" would.
        backend.delete(saved)
        raise FileExistsError(relative_path)


def write_new(relative_path: str, data: bytes) -> str:
    """Store ``data`` under ``relative_path`` (a new name); returns its SHA-256."""
    _save_new(relative_path, ContentFile(data))
    return hashlib.sha256(data).hexdigest()


class ReadableFile(Protocol):
    """What is read from: an open file, an uploaded file."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


def write_new_from(relative_path: str, source: ReadableFile) -> int:
    """Like ``write_new`` for a file object; returns the number of bytes stored.

    An upload Django spooled to disk is moved into place on the filesystem (no copy at all when on the
    same disk), anything else is copied in chunks; S3 gets it uploaded straight from that file (in parts
    when large). A DSLR photo is never held twice.
    """
    content: File[Any] = source if isinstance(source, File) else File(cast(BinaryIO, source))
    size = int(content.size)
    _save_new(relative_path, content)
    return size


# --- reading ------------------------------------------------------------------------------------------


class _ObjectBody(io.RawIOBase):
    """An S3 object's body as a raw stream (buffered by ``open_stream``): read as the bytes arrive."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _store_errors(""):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _object_key(backend: S3Storage, name: str) -> str:
    return f"{backend.location.strip('/')}/{name}" if backend.location else name


def _s3_client(backend: S3Storage) -> Any:
    """The boto3 client of the storage's bucket, shared by every thread (boto3 clients are thread-safe).

    Not ``backend.connection``: django-storages makes a boto3 session per thread for that, about 13 MB
    and 100–200 ms each, on every new thread of every pool. Its uploads and deletes go through the
    bucket already, so with this a process sets boto3 up once.
    """
    return backend.bucket.meta.client


def open_stream(relative_path: str) -> BinaryIO:
    """The file for reading front to back (the caller closes it); FileNotFoundError if it is not stored.

    On the filesystem the file itself; on S3 the object's body as it downloads (one request, nothing held
    but the current chunk). ``read(n)`` returns ``n`` bytes unless the file ends first. Not seekable on
    S3: for Pillow use ``open_read``.
    """
    backend = media_storage()
    name = checked(relative_path)
    local = _local_path(backend, name)
    if local is not None:
        return open(local, "rb")
    if isinstance(backend, S3Storage):
        with _store_errors(relative_path):
            answer = _s3_client(backend).get_object(
                Bucket=backend.bucket_name, Key=_object_key(backend, name)
            )
        # A small buffer: reads bigger than it (providers.bodies asks 192 KiB) go straight through, so a
        # photo in flight holds its current chunk, not a megabyte besides.
        return io.BufferedReader(_ObjectBody(answer["Body"]), buffer_size=STREAM_BUFFER_BYTES)
    with _store_errors(relative_path):
        return cast(BinaryIO, backend.open(name, "rb"))


def open_read(relative_path: str) -> BinaryIO:
    """The file opened for reading and seeking (the caller closes it): what Pillow needs.

    From a remote store the file is downloaded first, into memory up to ``SPOOL_MEMORY_BYTES``, then
    into a temporary file.
    """
    local = _local_path(media_storage(), checked(relative_path))
    if local is not None:
        return open(local, "rb")
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
    try:
        with open_stream(relative_path) as stream:
            shutil.copyfileobj(stream, spooled, COPY_CHUNK_BYTES)
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return cast(BinaryIO, spooled)


def read(relative_path: str) -> bytes:
    with open_stream(relative_path) as stream:
        return stream.read()


def size(relative_path: str) -> int:
    with _store_errors(relative_path):
        return int(media_storage().size(checked(relative_path)))


def exists(relative_path: str) -> bool:
    backend = media_storage()
    name = checked(relative_path)
    if not isinstance(backend, S3Storage):
        return bool(backend.exists(name))
    try:
        with _store_errors(relative_path):
            _s3_client(backend).head_object(Bucket=backend.bucket_name, Key=_object_key(backend, name))
    except FileNotFoundError:
        return False
    return True


def presigned_url(relative_path: str, *, expires_in: int, filename: str, mime_type: str) -> str | None:
    """A URL of the bucket that serves the file for ``expires_in`` seconds as an attachment, or None when
    the store cannot give one (the filesystem). Signed locally: no request to the store."""
    backend = media_storage()
    if not isinstance(backend, S3Storage):
        return None
    with _store_errors(relative_path):
        url = _s3_client(backend).generate_presigned_url(
            "get_object",
            Params={
                "Bucket": backend.bucket_name,
                "Key": _object_key(backend, checked(relative_path)),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": mime_type,
            },
            ExpiresIn=max(1, expires_in),
        )
    return str(url)


def presigned_downloads() -> bool:
    """Whether public result downloads redirect to the bucket (``S3_PRESIGNED_DOWNLOADS`` on S3)."""
    return bool(settings.S3_PRESIGNED_DOWNLOADS) and isinstance(media_storage(), S3Storage)


# --- deleting -----------------------------------------------------------------------------------------


def delete(relative_path: str) -> bool:
    """Remove a file; True if it was there to remove. Missing files are fine (another process got there
    first). On S3, where a delete does not say whether the object existed, True once it is gone."""
    if not relative_path:
        return False
    backend = media_storage()
    name = checked(relative_path)
    local = _local_path(backend, name)
    if local is None:
        with _store_errors(relative_path):
            backend.delete(name)
        return True
    try:
        # One system call that also says whether the file was there (Storage.delete does not).
        os.remove(local)
    except FileNotFoundError:
        return False
    return True


def list_folder(folder: str) -> list[tuple[str, datetime]]:
    """The files directly in ``folder`` (``inputs``, ``results``, …): (name in the store, last modified).

    Django's ``listdir`` and ``get_modified_time``; on S3 the listing itself carries the times (one
    request per 1,000 objects instead of one per object).
    """
    backend = media_storage()
    prefix = checked(folder).rstrip("/") + "/"
    if isinstance(backend, S3Storage):
        listed = []
        with _store_errors(folder):
            pages = (
                _s3_client(backend)
                .get_paginator("list_objects_v2")
                .paginate(Bucket=backend.bucket_name, Prefix=_object_key(backend, prefix), Delimiter="/")
            )
            for page in pages:
                for entry in page.get("Contents", ()):
                    name = prefix + str(entry["Key"]).rsplit("/", 1)[-1]
                    if name != prefix:
                        listed.append((name, entry["LastModified"]))
        return listed
    try:
        _folders, files = backend.listdir(prefix)
    except FileNotFoundError:
        return []
    listed = []
    for file_name in files:
        with contextlib.suppress(FileNotFoundError):  # deleted meanwhile by its job or another cleanup
            listed.append((prefix + file_name, backend.get_modified_time(prefix + file_name)))
    return listed


# A full disk, or a full quota on it.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def not_stored(error: OSError, what: str) -> ServiceError:
    """The catalogue's 503 for ``what`` ("the photo", "the result", "the upload") that could not be
    written (the disk is full or failing, the S3 store down or refusing); logged for ops with the path
    (never the bytes)."""
    logger.error("%s not stored: %s (%s)", what, error.strerror or error, error.filename or "")
    if isinstance(error, StoreUnavailable):
        message = f"The media store is unavailable: {what} could not be stored."
    elif error.errno in DISK_FULL_ERRNOS:
        message = f"The server's disk is full: {what} could not be stored."
    else:
        message = f"The server could not store {what} ({error.strerror or error.__class__.__name__})."
    return ServiceError(FailureReason.SERVICE_UNAVAILABLE, message)
