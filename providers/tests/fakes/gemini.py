"""A small fake of Google's Gemini image API (``models/{model}:generateContent``).

Standard library + asyncio only (uvloop is used when it is installed). It is a hand-written
HTTP/1.1 server with keep-alive, ``Content-Length`` and ``Transfer-Encoding: chunked`` request
bodies, meant for two uses:

* pytest: ``fake = FakeGemini(); fake.start()`` runs the server in a daemon thread with its own
  event loop; ``fake.base_url`` is then ``http://127.0.0.1:<port>``; ``fake.stop()`` ends it.
* benchmarks: ``python -m providers.tests.fakes.gemini --port 9911 --delay 1.0`` runs it in the
  foreground until SIGINT/SIGTERM, steered through ``/__delay``, ``/__mode``, ``/__stats`` and
  ``/__reset``.

Every ``generateContent`` request is counted, recorded (base64 payloads replaced by their decoded
byte length) and consumes one mode from the script queue (``default_mode`` when the queue is
empty). It then waits ``delay`` seconds, applies the real API's validation (403 without an API
key, 400 for a bad body, ``responseMimeType``, or ``imageSize`` on a non "3-pro" model) and
finally answers according to the mode.

Besides the API's own answers, every fake can misbehave the way a broken provider (or the network in
front of it) does — :data:`MISBEHAVIOURS`, answered by ``FakeServer._misbehave`` — and answer a
well-formed result whose image is not a usable one (:data:`BAD_IMAGES`). A request to another host
(``http://localhost:<port>/elsewhere/…``, where the misbehaving answers point) is recorded in
``elsewhere`` and answered with a valid PNG, so a client that follows them is caught.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import contextvars
import json
import re
import signal
import socket
import struct
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

# Misbehaviours every fake shares (FakeServer._misbehave), applied where the provider's answer goes out.
MISBEHAVIOURS: tuple[str, ...] = (
    "reset",  # the answer's headers and half its body, then the connection is reset (RST)
    "trickle",  # the answer's headers, then its body one byte every TRICKLE_SECONDS
    "huge_error",  # HTTP 400 with a JSON error body of HUGE_ERROR_BYTES
    "redirect",  # 307 to another host (localhost instead of 127.0.0.1): /elsewhere/redirected
)
# A well-formed answer carrying one of BAD_IMAGES instead of the result image.
BAD_IMAGE_MODES: tuple[str, ...] = ("truncated_image", "not_image", "garbage_png")
MODES: tuple[str, ...] = (
    "image", "no_image", "429", "500", "503", "400", "403", "404", "hang", *MISBEHAVIOURS, *BAD_IMAGE_MODES,
)  # fmt: skip
HUGE_ERROR_BYTES = 5 * 1024 * 1024
TRICKLE_SECONDS = 0.5
# Where misbehaving answers point: this server under another host name, so a client that follows them
# reaches it and is recorded (``FakeServer.elsewhere``).
ELSEWHERE_HOST = "localhost"
ELSEWHERE_PATH = "/elsewhere"

# mode -> (HTTP code, Google status, message)
_ERROR_MODES: dict[str, tuple[int, str, str]] = {
    "429": (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "500": (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "403": (403, "PERMISSION_DENIED", "The caller does not have permission"),
    "404": (404, "NOT_FOUND", "Requested entity was not found."),
}

_REASONS: dict[int, str] = {
    200: "OK",
    307: "Temporary Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

_GENERATE_PATH = re.compile(r"^/(?:v1beta|v1alpha|v1)/models/([^/:]+):generateContent$")
_STREAM_LIMIT = 1 << 20  # longest accepted request head / chunk-size line
_READ_SIZE = 1 << 20
_MAX_BODY = 128 * 1024 * 1024
_THREAD_PARSE_THRESHOLD = 256 * 1024  # parse larger bodies off the event loop
_IMAGE_OUTPUT_TOKENS = 1290
_IMAGE_INPUT_TOKENS = 258


def make_png(width: int = 64, height: int = 64) -> bytes:
    """A valid RGB PNG (a colour gradient), built with zlib + struct only."""
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter type: None
        for x in range(width):
            raw += bytes((x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), 160))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


PNG_BYTES: bytes = make_png()
PNG_B64: str = base64.b64encode(PNG_BYTES).decode("ascii")
BAD_IMAGES: dict[str, bytes] = {
    "truncated_image": PNG_BYTES[: len(PNG_BYTES) // 2],  # a PNG cut off half way
    "not_image": b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n",
    "garbage_png": PNG_BYTES[:8] + bytes(range(256)) * 16,  # the PNG signature, then noise
}


@dataclass
class ApiError:
    code: int
    status: str
    message: str

    def payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


@dataclass
class _Inspection:
    body: Any  # the parsed body with base64 data replaced by its decoded length; None if not JSON
    error: ApiError | None
    image_parts: int = 0
    text_chars: int = 0


class _HttpError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def _b64_length(data: str) -> int | None:
    """Decoded length of standard or URL-safe base64, None if it does not decode."""
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        pass
    try:
        return len(base64.b64decode(data, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError):
        return None


def _sanitize(node: Any, bad_paths: list[str], path: str = "") -> Any:
    """Copy of a JSON value with every ``inline_data``/``inlineData`` ``data`` replaced by its byte length."""
    if isinstance(node, list):
        return [_sanitize(item, bad_paths, f"{path}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        sub = f"{path}.{key}" if path else key
        if key in ("inline_data", "inlineData") and isinstance(value, dict):
            inline = dict(value)
            data = inline.get("data")
            if isinstance(data, str):
                length = _b64_length(data)
                if length is None:
                    bad_paths.append(f"{sub}.data")
                    inline["data"] = f"<undecodable base64, {len(data)} chars>"
                else:
                    inline["data"] = length
            out[key] = inline
        else:
            out[key] = _sanitize(value, bad_paths, sub)
    return out


def _inspect(raw: bytes, model: str) -> _Inspection:
    """Parse, record-friendly sanitize and validate a generateContent body like the real API does."""
    try:
        parsed = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return _Inspection(None, _invalid("Invalid JSON payload received. Unexpected token."))
    bad_paths: list[str] = []
    body = _sanitize(parsed, bad_paths)
    if not isinstance(body, dict):
        return _Inspection(body, _invalid("Invalid JSON payload received. Expected an object."))
    if bad_paths:
        return _Inspection(
            body, _invalid(f"Invalid value at '{bad_paths[0]}' (TYPE_BYTES), Base64 decoding failed.")
        )

    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return _Inspection(body, _invalid("* GenerateContentRequest.contents: contents is not specified"))
    image_parts = 0
    text_chars = 0
    for ci, content in enumerate(contents):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            return _Inspection(
                body,
                _invalid(f"* GenerateContentRequest.contents[{ci}].parts: contents.parts must not be empty."),
            )
        for pi, part in enumerate(parts):
            if not isinstance(part, dict):
                return _Inspection(
                    body, _invalid(f"Invalid value at 'contents[{ci}].parts[{pi}]': expected an object.")
                )
            inline = part.get("inline_data", part.get("inlineData"))
            if isinstance(inline, dict):
                mime = inline.get("mime_type", inline.get("mimeType"))
                if not isinstance(inline.get("data"), int):
                    return _Inspection(
                        body,
                        _invalid(f"* GenerateContentRequest.contents[{ci}].parts[{pi}].data: missing data."),
                    )
                if isinstance(mime, str) and mime.startswith("image/"):
                    image_parts += 1
            text = part.get("text")
            if isinstance(text, str):
                text_chars += len(text)

    config = body.get("generationConfig", body.get("generation_config"))
    if config is not None and not isinstance(config, dict):
        return _Inspection(body, _invalid("Invalid value at 'generation_config': expected an object."))
    if isinstance(config, dict):
        if "responseMimeType" in config or "response_mime_type" in config:
            return _Inspection(
                body,
                _invalid(
                    f"* GenerateContentRequest.generation_config.response_mime_type: "
                    f"response_mime_type is not supported for image generation with models/{model}."
                ),
            )
        image_config = config.get("imageConfig", config.get("image_config"))
        if isinstance(image_config, dict) and ("imageSize" in image_config or "image_size" in image_config):
            if "3-pro" not in model:
                return _Inspection(
                    body, _invalid(f"Image size is not supported for models/{model}. Remove image_size.")
                )

    if image_parts == 0:
        return _Inspection(
            body,
            _invalid(
                "This model requires at least one inline image part (inline_data with an image/ mime type)."
            ),
        )
    return _Inspection(body, None, image_parts, text_chars)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _read_exact(reader: asyncio.StreamReader, size: int) -> bytes:
    """Read exactly ``size`` bytes in bounded pieces (keeps the stream buffer small for big bodies)."""
    pieces: list[bytes] = []
    remaining = size
    while remaining > 0:
        piece = await reader.read(min(remaining, _READ_SIZE))
        if not piece:
            raise asyncio.IncompleteReadError(b"".join(pieces), size)
        pieces.append(piece)
        remaining -= len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    encoding = headers.get("transfer-encoding")
    if encoding is not None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        if not codings or codings[-1] != "chunked":
            raise _HttpError(501, f"unsupported transfer-encoding {encoding!r}")
        pieces: list[bytes] = []
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "bad chunk size") from None
            if size < 0:
                raise _HttpError(400, "bad chunk size")
            if size == 0:
                break
            total += size
            if total > _MAX_BODY:
                raise _HttpError(413, "request body too large")
            pieces.append(await _read_exact(reader, size))
            if await reader.readexactly(2) != b"\r\n":
                raise _HttpError(400, "missing CRLF after chunk")
        while (await reader.readuntil(b"\r\n")) != b"\r\n":
            pass  # trailers
        return b"".join(pieces)
    length_header = headers.get("content-length")
    if length_header is None:
        return b""
    try:
        length = int(length_header)
    except ValueError:
        raise _HttpError(400, "bad content-length") from None
    if length < 0:
        raise _HttpError(400, "bad content-length")
    if length > _MAX_BODY:
        raise _HttpError(413, "request body too large")
    return await _read_exact(reader, length)


def _encode_response(status: int, payload: Any, keep_alive: bool, server: str = "fake-gemini") -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        "Content-Type: application/json; charset=UTF-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
        f"Server: {server}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


_Response = tuple[int, Any]  # (HTTP status, JSON payload)

# The connection being answered (each connection runs in its own task, hence its own context): for
# answers that are not a JSON body (raw bytes, broken answers).
_WRITER: contextvars.ContextVar[asyncio.StreamWriter] = contextvars.ContextVar("fake_provider_writer")


def raw_head(
    status: int, content_type: str, length: int | None, server: str, headers: dict[str, str] | None = None
) -> bytes:
    """A response head that closes the connection after the body (no length: the body ends at close)."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines += ["Connection: close", f"Server: {server}", "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def write_raw(
    status: int, content_type: str, body: bytes, server: str, *, head_only: bool = False
) -> None:
    """Answer a non-JSON body on the current connection, then close it (``Connection: close``)."""
    writer = _WRITER.get()
    writer.write(raw_head(status, content_type, len(body), server) + (b"" if head_only else body))
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashing proxy or provider does mid-answer."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FakeServer(ABC):
    """The HTTP/1.1 server, call accounting and ``/__`` control API shared by the fake providers.

    Subclasses set ``MODES`` and ``SERVER_NAME`` and implement ``_api`` (every non-control request);
    an API call is accounted with ``_begin``/``_finish`` around ``_wait_delay``.
    """

    MODES: tuple[str, ...] = MODES  # the modes a script may hold; "image" must be one of them
    SERVER_NAME = "fake-provider"  # the ``Server`` header and thread name

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
        default_mode: str = "image",
        inspect: bool = True,
    ) -> None:
        self._check_mode(default_mode)
        # inspect=False (benchmarks): skip parsing and validating bodies, like a provider whose own
        # work is not what is being measured; requests are still counted.
        self.inspect = inspect
        self.host = host
        self.port = port
        self.delay: float = float(delay)
        self._default_mode = default_mode
        self._initial_delay = float(delay)
        self._initial_mode = default_mode
        self._lock = threading.Lock()
        self._script: collections.deque[str] = collections.deque()
        self.calls = 0
        self.requests: list[dict[str, Any]] = []
        self.inflight = 0
        self.max_inflight = 0
        # How each API request's body arrived: ("content-length" | "chunked", bytes received).
        self.body_framings: list[tuple[str, int]] = []
        # Requests that reached "another host" (ELSEWHERE_HOST): method, path and headers.
        self.elsewhere: list[dict[str, Any]] = []
        # The PNG answered in "image" mode instead of the 64×64 one (e.g. a photo-sized result to carry
        # a QR code); reset() goes back to the small one.
        self.result_png: bytes | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    # ----------------------------------------------------------------- control (thread-safe)

    @property
    def default_mode(self) -> str:
        return self._default_mode

    @default_mode.setter
    def default_mode(self, mode: str) -> None:
        self._check_mode(mode)
        self._default_mode = mode

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::", "localhost") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def script(self) -> list[str]:
        """The modes still queued."""
        with self._lock:
            return list(self._script)

    def set_script(self, modes: list[str]) -> None:
        """Queue modes consumed one per API request (then ``default_mode`` applies)."""
        for mode in modes:
            self._check_mode(mode)
        with self._lock:
            self._script = collections.deque(modes)

    def reset(self) -> None:
        """Clear counters, recorded requests and the script; restore the initial delay and default mode."""
        with self._lock:
            self._script.clear()
            self.calls = 0
            self.requests = []
            self.body_framings = []
            self.elsewhere = []
            self.result_png = None
            self.max_inflight = self.inflight
            self.delay = self._initial_delay
            self._default_mode = self._initial_mode

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "max_inflight": self.max_inflight,
                "inflight": self.inflight,
                "delay": self.delay,
                "default_mode": self._default_mode,
                "script": list(self._script),
            }

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Run the server in a daemon thread; returns once it is listening (``port`` is then set)."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        ready = threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            loop = _new_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready.set))
            except BaseException as exc:
                failures.append(exc)
            finally:
                ready.set()
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        thread = threading.Thread(target=run, name=self.SERVER_NAME, daemon=True)
        self._thread = thread
        thread.start()
        ready.wait()
        if failures:
            thread.join()
            self._thread = None
            self._loop = None
            raise failures[0]

    def stop(self) -> None:
        """Stop the server (cancels hanging/delayed requests) and join its thread."""
        loop, thread, stopping = self._loop, self._thread, self._stopping
        if thread is None or loop is None:
            return
        if stopping is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run in the current (main) thread until SIGINT/SIGTERM."""
        loop = _new_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop

        def ready() -> None:
            stopping = self._stopping
            assert stopping is not None
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stopping.set)
            if on_ready is not None:
                on_ready()

        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            loop.close()
            self._loop = None

    async def _serve(self, on_ready: Callable[[], None]) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._on_connection, self.host, self.port, limit=_STREAM_LIMIT, backlog=4096
        )
        self.port = server.sockets[0].getsockname()[1]
        on_ready()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    # ----------------------------------------------------------------- HTTP

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _WRITER.set(writer)
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._connection(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # client closed the connection
            except asyncio.LimitOverrunError:
                writer.write(
                    _encode_response(431, {"error": "request head too large"}, False, self.SERVER_NAME)
                )
                await writer.drain()
                return
            lines = head.decode("latin-1").split("\r\n")
            while lines and not lines[0]:
                lines.pop(0)  # tolerate stray CRLFs between requests
            request_line = lines[0].split(" ") if lines else []
            if len(request_line) != 3 or not request_line[2].startswith("HTTP/"):
                writer.write(_encode_response(400, {"error": "bad request line"}, False, self.SERVER_NAME))
                await writer.drain()
                return
            method, target, version = request_line
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if not line:
                    continue
                name, sep, value = line.partition(":")
                if not sep:
                    continue
                key = name.strip().lower()
                headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
            tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
            if version == "HTTP/1.0":
                keep_alive = "keep-alive" in tokens
            else:
                keep_alive = "close" not in tokens

            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                body = await _read_body(reader, headers)
            except _HttpError as exc:
                writer.write(_encode_response(exc.code, {"error": exc.message}, False, self.SERVER_NAME))
                await writer.drain()
                return

            if not target.startswith("/__"):
                framing = "chunked" if "transfer-encoding" in headers else "content-length"
                with self._lock:
                    self.body_framings.append((framing, len(body)))
            response = await self._dispatch(method.upper(), target, headers, body, reader)
            if response is None:
                return  # hang mode: the client went away
            status, payload = response
            writer.write(_encode_response(status, payload, keep_alive, self.SERVER_NAME))
            await writer.drain()
            if not keep_alive:
                return

    async def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes, reader: asyncio.StreamReader
    ) -> _Response | None:
        url = urlsplit(target)
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path.startswith("/__"):
            return self._control(method, url.path, query)
        if url.path.startswith(ELSEWHERE_PATH):
            with self._lock:
                self.elsewhere.append({"method": method, "path": url.path, "headers": headers})
            await write_raw(200, "image/png", PNG_BYTES, self.SERVER_NAME)
            return None
        return await self._api(method, url.path, query, headers, body, reader)

    @abstractmethod
    async def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
    ) -> _Response | None:
        """Answer one API request (``None``: the client went away); headers are lower-cased."""

    # ----------------------------------------------------------------- misbehaviour

    async def _misbehave(self, mode: str, reader: asyncio.StreamReader, answer: Any) -> None:
        """Answer the current request as ``mode`` (one of MISBEHAVIOURS) says, instead of ``answer`` (the
        JSON payload a working provider would send); the connection ends with it."""
        writer = _WRITER.get()
        body = json.dumps(answer, separators=(",", ":")).encode()
        json_type = "application/json; charset=UTF-8"
        try:
            if mode == "reset":
                writer.write(raw_head(200, json_type, len(body), self.SERVER_NAME) + body[: len(body) // 2])
                await writer.drain()
                reset_connection(writer)
            elif mode == "trickle":
                writer.write(raw_head(200, json_type, len(body), self.SERVER_NAME))
                for index in range(len(body)):
                    writer.write(body[index : index + 1])
                    await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        if not await asyncio.wait_for(reader.read(65536), TRICKLE_SECONDS):
                            return  # the client went away
            elif mode == "huge_error":
                error = {"code": 400, "status": "INVALID_ARGUMENT", "type": "invalid_request_error"}
                huge = json.dumps({"error": {**error, "message": "x" * HUGE_ERROR_BYTES}}).encode()
                writer.write(raw_head(400, json_type, len(huge), self.SERVER_NAME))
                for start in range(0, len(huge), _READ_SIZE):
                    writer.write(huge[start : start + _READ_SIZE])
                    await writer.drain()
            elif mode == "redirect":
                location = f"http://{ELSEWHERE_HOST}:{self.port}{ELSEWHERE_PATH}/redirected"
                writer.write(raw_head(307, "text/plain", 0, self.SERVER_NAME, {"Location": location}))
                await writer.drain()
            else:
                raise ValueError(f"{mode!r} is not a misbehaviour")
        except ConnectionError:
            pass  # the client hung up, as a client of a misbehaving provider should

    # ----------------------------------------------------------------- call accounting

    def _begin(self, record: dict[str, Any]) -> tuple[str, int]:
        """Count an API call, take its mode from the script, record it and mark it in flight."""
        with self._lock:
            self.calls += 1
            number = self.calls
            mode = self._script.popleft() if self._script else self._default_mode
            self.requests.append({**record, "mode": mode, "n": number})
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        return mode, number

    def _finish(self) -> None:
        with self._lock:
            self.inflight -= 1

    async def _wait_delay(self) -> None:
        delay = self.delay
        if delay > 0:
            await asyncio.sleep(delay)

    # ----------------------------------------------------------------- /__ control endpoints

    def _control(self, method: str, path: str, query: dict[str, list[str]]) -> _Response:
        def param(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        if path == "/__stats":
            if method != "GET":
                return 405, {"error": "use GET"}
            return 200, self.stats()
        if method != "POST":
            if path in ("/__delay", "/__mode", "/__reset"):
                return 405, {"error": "use POST"}
            return 404, {"error": f"unknown control endpoint {path}"}
        if path == "/__reset":
            self.reset()
            return 200, self.stats()
        if path == "/__delay":
            try:
                seconds = float(param("s") or "")
            except ValueError:
                return 400, {"error": "expected ?s=<seconds>"}
            if seconds < 0 or seconds != seconds:
                return 400, {"error": "delay must be >= 0"}
            self.delay = seconds
            return 200, self.stats()
        if path == "/__mode":
            default = param("default")
            script = param("script")
            modes = [m.strip() for m in script.split(",") if m.strip()] if script is not None else None
            try:
                if default:
                    self._check_mode(default)
                for mode in modes or []:
                    self._check_mode(mode)
            except ValueError as exc:
                return 400, {"error": str(exc)}
            if default:
                self.default_mode = default
            if modes is not None:
                self.set_script(modes)
            return 200, self.stats()
        return 404, {"error": f"unknown control endpoint {path}"}

    def _check_mode(self, mode: str) -> None:
        _check_mode(mode, self.MODES)


class FakeGemini(FakeServer):
    """A fake Gemini ``generateContent`` server; see the module docstring."""

    MODES = MODES
    SERVER_NAME = "fake-gemini"

    async def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
    ) -> _Response | None:
        match = _GENERATE_PATH.match(path)
        if match is None or method != "POST":
            return 404, ApiError(404, "NOT_FOUND", f"Method not found: {method} {path}").payload()
        api_key = headers.get("x-goog-api-key")
        if api_key is None:
            api_key = (query.get("key") or [""])[0]
        return await self._generate(match.group(1), api_key, body, reader)

    # ----------------------------------------------------------------- generateContent

    async def _generate(
        self, model: str, api_key: str, raw: bytes, reader: asyncio.StreamReader
    ) -> _Response | None:
        if not self.inspect:
            inspection = _Inspection(body=None, error=None, image_parts=1, text_chars=0)
        elif len(raw) > _THREAD_PARSE_THRESHOLD:
            inspection = await asyncio.to_thread(_inspect, raw, model)
        else:
            inspection = _inspect(raw, model)
        del raw
        mode, number = self._begin({"model": model, "api_key": api_key, "body": inspection.body})
        try:
            await self._wait_delay()
            if not api_key.strip():
                return _error(
                    ApiError(
                        403,
                        "PERMISSION_DENIED",
                        "Method doesn't allow unregistered callers (callers without established identity). "
                        "Please use API Key or other form of API consumer identity to call this API.",
                    )
                )
            if inspection.error is not None:
                return _error(inspection.error)
            if mode == "hang":
                await _wait_for_disconnect(reader)
                return None
            if mode in _ERROR_MODES:
                code, status, message = _ERROR_MODES[mode]
                if mode == "404":
                    message = f"models/{model} is not found for API version v1beta, or is not supported."
                return _error(ApiError(code, status, message))
            prompt_tokens = inspection.image_parts * _IMAGE_INPUT_TOKENS + max(1, inspection.text_chars // 4)
            if mode == "no_image":
                return 200, {
                    "candidates": [{"finishReason": "NO_IMAGE", "index": 0}],
                    "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
                    "modelVersion": model,
                    "responseId": f"fake-{number}",
                }
            image = base64.b64encode(BAD_IMAGES.get(mode) or self.result_png or PNG_BYTES).decode()
            answer = {
                "candidates": [
                    {
                        "content": {
                            "role": "model",
                            "parts": [{"inlineData": {"mimeType": "image/png", "data": image}}],
                        },
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": _IMAGE_OUTPUT_TOKENS,
                    "totalTokenCount": prompt_tokens + _IMAGE_OUTPUT_TOKENS,
                    "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": _IMAGE_OUTPUT_TOKENS}],
                },
                "modelVersion": model,
                "responseId": f"fake-{number}",
            }
            if mode in MISBEHAVIOURS:
                await self._misbehave(mode, reader, answer)
                return None
            return 200, answer
        finally:
            self._finish()


def _error(error: ApiError) -> _Response:
    return error.code, error.payload()


def _check_mode(mode: str, modes: tuple[str, ...] = MODES) -> None:
    if mode not in modes:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(modes)}")


async def _wait_for_disconnect(reader: asyncio.StreamReader) -> None:
    """Hang: swallow whatever arrives until the client closes (or the server stops and cancels us)."""
    while await reader.read(65536):
        pass


def _raise_fd_limit() -> None:
    with contextlib.suppress(Exception):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run_cli(server_class: type[FakeServer], description: str, port: int, argv: list[str] | None) -> None:
    """The ``__main__`` of a fake: parse ``--host --port --delay --mode --no-inspect`` and serve."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--mode", default="image", choices=server_class.MODES, help="default mode")
    parser.add_argument("--no-inspect", action="store_true", help="do not parse/validate bodies (benchmarks)")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    fake = server_class(
        host=args.host, port=args.port, delay=args.delay, default_mode=args.mode, inspect=not args.no_inspect
    )
    label = server_class.SERVER_NAME.replace("-", " ")
    fake.serve_forever(lambda: print(f"{label} on {fake.host}:{fake.port}", flush=True))


def main(argv: list[str] | None = None) -> None:
    run_cli(FakeGemini, "Fake Gemini image API (generateContent).", 9911, argv)


if __name__ == "__main__":
    main()
