"""A DSLR Remote Pro stand-in: the booth's exact multipart request over a raw socket.

It sends ``Expect: 100-continue`` and, like the booth, waits for ``100 Continue`` before uploading
the body (or takes the final answer if the server refuses from the headers alone).
"""

from __future__ import annotations

import hashlib
import io
import socket
import time
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
) -> BoothResponse:
    """POST like the booth: headers with Expect: 100-continue, body only after 100 Continue."""
    started = time.monotonic()
    length = len(body) if content_length is None else content_length
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    # ``source``: another loopback address (127.0.0.2, …) plays another booth or client.
    source_address = (source, 0) if source else None
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=source_address
    ) as sock:
        sock.sendall(head)
        reader = sock.makefile("rb")
        status_line = reader.readline()
        got_continue = b" 100 " in status_line
        if got_continue:
            reader.readline()  # blank line after 100 Continue
            try:
                sock.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            status_line = reader.readline()
        status = int(status_line.split(b" ")[1])
        headers: dict[str, str] = {}
        while True:
            line = reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = reader.read(int(headers["content-length"]))
        else:
            data = reader.read()
    return BoothResponse(
        status=status,
        headers=headers,
        body=data,
        elapsed=time.monotonic() - started,
        got_continue=got_continue,
    )
