"""Request bodies streamed from the media store: a photo travels to the provider chunk by chunk.

A body is a list of parts, either small bytes (JSON or multipart framing) or a stored image sent raw
or as base64. Its exact length is known up front, so it goes out with a ``Content-Length`` (httpx sends
an async-iterator body as-is when the header is set), and at most one chunk of each image is in memory
at a time. Files are read in a thread: the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from providers.base import ProviderError, StoredImage

# A multiple of 3: the base64 of consecutive chunks joins into the base64 of the whole file. Small enough
# that a hundred DSLR photos in flight hold little memory (a chunk and its base64 per job)…
CHUNK_BYTES = 3 * 64 * 1024
# …while a file up to this size (a booth photo of a few hundred KB) is read in one go: one thread hop.
WHOLE_FILE_BYTES = 3 * 341 * 1024


def base64_length(size: int) -> int:
    """Length of the padded base64 encoding of ``size`` bytes."""
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True)
class FilePart:
    image: StoredImage
    base64: bool = False

    @property
    def length(self) -> int:
        return base64_length(self.image.size_bytes) if self.base64 else self.image.size_bytes


BodyPart = bytes | FilePart


class StreamedBody:
    """Parts sent one after another; ``chunks()`` can be called again for a retry."""

    def __init__(self, parts: Sequence[BodyPart]) -> None:
        self.parts = list(parts)
        self.content_length = sum(part.length if isinstance(part, FilePart) else len(part) for part in parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        # Small framing parts ride along with the file chunks beside them: a booth photo's whole body
        # goes out in one write (one send on the socket), a DSLR photo's in about 1 MiB pieces.
        pending: list[bytes] = []
        pending_size = 0
        for part in self.parts:
            pieces = _file_chunks(part) if isinstance(part, FilePart) else _just(part)
            async for piece in pieces:
                pending.append(piece)
                pending_size += len(piece)
                if pending_size >= CHUNK_BYTES:
                    yield b"".join(pending)
                    pending, pending_size = [], 0
        if pending_size:
            yield b"".join(pending)


async def _just(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


async def _file_chunks(part: FilePart) -> AsyncIterator[bytes]:
    left = part.image.size_bytes
    if left <= 0:
        return
    # Opening the file and reading its first chunk share one trip to a thread.
    first = left if left <= WHOLE_FILE_BYTES else CHUNK_BYTES
    handle, (read, chunk) = await asyncio.to_thread(_open_and_read, part, first)
    try:
        while True:
            if read == 0:
                # The Content-Length already went out: a file that shrank cannot be sent correctly.
                raise ProviderError(
                    f"{part.image.path} is shorter than when the request began", retryable=False
                )
            left -= read
            yield chunk
            if left <= 0:
                break
            read, chunk = await asyncio.to_thread(_read_chunk, handle, min(CHUNK_BYTES, left), part.base64)
    finally:
        handle.close()


def _open_and_read(part: FilePart, size: int) -> tuple[BinaryIO, tuple[int, bytes]]:
    handle = part.image.open()
    try:
        return handle, _read_chunk(handle, size, part.base64)
    except BaseException:
        handle.close()
        raise


def _read_chunk(handle: BinaryIO, size: int, encode: bool) -> tuple[int, bytes]:
    # A regular file returns fewer bytes than asked only at its end, so every chunk but the last is a
    # whole CHUNK_BYTES (a multiple of 3) and the base64 pieces join up.
    data = handle.read(size)
    return len(data), base64.b64encode(data) if encode else data
