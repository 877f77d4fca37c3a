"""A DSLR Remote Pro stand-in: the booth's exact multipart request over a raw socket.

It sends ``Expect: 100-continue`` and, like the booth, waits for ``100 Continue`` before uploading
the body (or takes the final answer if the server refuses from the headers alone).
"""

from __future__ import annotations

import functools
import hashlib
import io
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

BOUNDARY = "------------090306000104030805010400"


def make_jpeg(width: int = 640, height: int = 427, *, quality: int = 90, noise: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (200, 120, 60))
    if noise:
        image = Image.effect_noise((width, height), 80).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@functools.cache
def make_dslr_jpeg() -> bytes:
    """A 20-megapixel (5472×3648) JPEG of about 6.5 MB, like a DSLR's: gradients under fine noise."""
    width, height = 5472, 3648
    gradient = Image.linear_gradient("L")
    channels = [gradient.resize((width, height)), gradient.rotate(90).resize((width, height))]
    channels.append(Image.new("L", (width, height), 120))
    noise = Image.effect_noise((width // 2, height // 2), 40).resize((width, height))
    image = Image.merge("RGB", [Image.blend(channel, noise, 0.35) for channel in channels])
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=93)
    return buffer.getvalue()


def pad_jpeg(photo: bytes, size: int) -> bytes:
    """The same JPEG grown to exactly ``size`` bytes with comment (COM) segments after its SOI marker."""
    missing = size - len(photo)
    segments = []
    while missing > 0:
        # A segment is its 2-byte marker, a 2-byte length (counting itself) and at most 65533 bytes.
        payload = max(0, min(65533, missing - 4))
        if missing - (payload + 4) in (1, 2, 3):
            payload -= 4  # never leave a remainder too small for one more segment
        segments.append(b"\xff\xfe" + struct.pack(">H", payload + 2) + b"\x00" * payload)
        missing -= payload + 4
    padded = photo[:2] + b"".join(segments) + photo[2:]
    assert len(padded) == size
    return padded


def make_png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A real PNG of width×height black pixels: a small file that decodes to hundreds of megabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one grey byte per pixel
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def make_png(width: int = 320, height: int = 240, *, transparent_center: bool = False) -> bytes:
    image = Image.new("RGBA", (width, height), (255, 0, 0, 255))
    if transparent_center:
        for x in range(width // 4, 3 * width // 4):
            for y in range(height // 4, 3 * height // 4):
                image.putpixel((x, y), (0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def booth_fields(photo: bytes, password: str) -> list[tuple[str, str]]:
    return [
        ("time", str(int(time.time()))),
        ("user_id", "Acer"),
        ("id", "CY04N068111304S2L_00000001."),
        ("hash", hashlib.sha1(photo).hexdigest()),  # noqa: S324 — the booth's own 40-hex field
        ("profile", "C:\\Users\\booth\\Documents\\PhotoboothImages\\profile.xml"),
        ("status", "C:\\Users\\booth\\Documents\\PhotoboothImages\\status.txt"),
        ("name", "DESKTOP-K968T3F"),
        ("model", "Windows"),
        ("version", "3.30.2"),
        ("password", password),
    ]


def multipart_body(
    fields: list[tuple[str, str]],
    file_field: str | None = "fileToUpload",
    photo: bytes = b"",
    filename: str = "IMG_0003.JPG",
    content_type: str = "image/jpeg",
) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    if file_field is not None:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + photo
            + b"\r\n"
        )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


@dataclass
class BoothResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    got_continue: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        import json

        return dict(json.loads(self.body))


def booth_post(
    port: int,
    path: str,
    body: bytes,
    *,
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
    content_length: int | None = None,
    timeout: float = 90,
    source: str | None = None,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
    expect: str | None = "100-continue",
) -> BoothResponse:
    """POST like the booth: headers with Expect: 100-continue, body only after 100 Continue.

    ``headers`` are sent too (after the booth's own); ``chunked`` sends the body with
    ``Transfer-Encoding: chunked`` (64 KB chunks) and no ``Content-Length``. ``expect``: another
    ``Expect`` value (any case), or None for none; unless it is ``100-continue``, the body follows the
    headers at once, as a client that expects no interim answer sends it.
    """
    started = time.monotonic()
    length = len(body) if content_length is None else content_length
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    if expect is not None:
        extra = f"Expect: {expect}\r\n{extra}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n"
        f"Content-Type: {content_type}\r\n{framing}\r\n{extra}\r\n"
    ).encode("latin-1")
    waits_for_continue = expect is not None and expect.lower() == "100-continue"
    if chunked:
        pieces = [body[start : start + 65536] for start in range(0, len(body), 65536)]
        body = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces) + b"0\r\n\r\n"
    # ``source``: another loopback address (127.0.0.2, …) plays another booth or client.
    source_address = (source, 0) if source else None
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=source_address
    ) as sock:
        sock.sendall(head if waits_for_continue else head + body)
        reader = sock.makefile("rb")
        status_line = reader.readline()
        got_continue = b" 100 " in status_line
        if got_continue:
            reader.readline()  # blank line after 100 Continue
            if waits_for_continue:
                try:
                    sock.sendall(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            status_line = reader.readline()
        if not status_line:
            raise ConnectionError(f"the server closed the connection without an answer to POST {path[:80]}")
        status = int(status_line.split(b" ")[1])
        response_headers: dict[str, str] = {}
        while True:
            line = reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        if "content-length" in response_headers:
            data = reader.read(int(response_headers["content-length"]))
        else:
            data = reader.read()
    return BoothResponse(
        status=status,
        headers=response_headers,
        body=data,
        elapsed=time.monotonic() - started,
        got_continue=got_continue,
    )
