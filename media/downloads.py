"""Stored files as HTTP answers of the async booth-path views, streamed from the media store.

A file up to one chunk (a booth-size result, a thumbnail) is read in the same thread hop that opens it
and answered whole; a bigger one goes out chunk by chunk, each read in a thread, with its
``Content-Length`` (booth software reads by length, never chunked). Whether the store is the disk or a
bucket, at most a chunk of a download is in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import BinaryIO

from django.http import HttpResponse, StreamingHttpResponse

from media import storage

CHUNK_BYTES = storage.COPY_CHUNK_BYTES


def _open_and_read(path: str) -> tuple[BinaryIO, bytes]:
    stream = storage.open_stream(path)
    try:
        return stream, stream.read(CHUNK_BYTES)
    except BaseException:
        stream.close()
        raise


async def stored_file_response(
    *, path: str, mime_type: str, size_bytes: int | None, headers: dict[str, str]
) -> HttpResponse | StreamingHttpResponse:
    """The stored file ``path`` as a response; FileNotFoundError (before anything is sent) if it is gone.

    ``size_bytes`` (from the database row) becomes the ``Content-Length`` of a streamed answer; unknown
    (None or 0), the store is asked.
    """
    stream, first = await asyncio.to_thread(_open_and_read, path)
    if len(first) < CHUNK_BYTES:
        stream.close()
        return HttpResponse(first, content_type=mime_type, headers=headers)
    length = size_bytes or await asyncio.to_thread(storage.size, path)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield first
            while chunk := await asyncio.to_thread(stream.read, CHUNK_BYTES):
                yield chunk
        finally:
            await asyncio.to_thread(stream.close)

    response = StreamingHttpResponse(chunks(), content_type=mime_type, headers=headers)
    response["Content-Length"] = str(length)
    return response
