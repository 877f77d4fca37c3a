"""A small fake of the Turbotext photo API (``/api_ai/<method>``, an asynchronous queue).

It runs on the HTTP/1.1 server of :mod:`providers.tests.fakes.gemini` (``FakeServer``: lifecycle,
call accounting, the ``/__delay``, ``/__mode``, ``/__stats``, ``/__reset`` control endpoints) and
speaks Turbotext's wire format:

* ``POST /api_ai/{generate_image2image,mix_images,deepfake_photo}`` with ``Authorization: Bearer
  <key>`` and an ``application/x-www-form-urlencoded`` body.
* ``do=create_queue`` validates the parameters and answers ``{"success": true, "queueid": N}``;
  right after that, in the background, every URL parameter (``url``, ``url_image_target``) is
  fetched with a real HTTP GET and its status, byte length and content type are recorded. A failed
  fetch (non-200 or connection error) ends the task with ``url_error``.
* ``do=get_result&queueid=N`` answers ``{"action": "reconnect"}`` until the task is ready: its
  downloads are done, ``delay`` seconds passed since creation and at least ``reconnects``
  reconnect answers were given. Then it answers the result (``uploaded_image`` placed according to
  ``result_url_location``: "top", "data" or "both") or the task's error.
* ``GET /download/<N>.png`` serves the result PNG of a task whose success was reported (each
  download's request headers are kept in ``result_requests``).

Every create_queue call is counted in ``calls`` and consumes one mode from the script queue
(``default_mode`` when empty), whatever its outcome. Modes: see :data:`MODES`. The shared server's
misbehaviours (``reset``, ``trickle``, ``huge_error``, ``redirect``) apply to create_queue; the bad
images (``truncated_image``, ``not_image``, ``garbage_png``) and the download modes to the result.

Unlike Gemini's, ``delay`` does not hold answers back: it is the time from create_queue until the
task is ready. ``inspect=False`` skips parameter validation (URLs are still fetched).

pytest: ``fake = FakeTurbotext(); fake.start()`` / ``fake.stop()``; benchmarks:
``python -m providers.tests.fakes.turbotext --port 9913``, steered through the control endpoints
plus ``POST /__config?reconnects=N&result_url_location=top|data|both``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

from providers.tests.fakes.gemini import (
    _WRITER,
    BAD_IMAGE_MODES,
    BAD_IMAGES,
    ELSEWHERE_HOST,
    ELSEWHERE_PATH,
    MISBEHAVIOURS,
    PNG_BYTES,
    FakeServer,
    _Response,
    _wait_for_disconnect,
    raw_head,
    run_cli,
    write_raw,
)

MODES: tuple[str, ...] = (
    "image",  # normal: success after delay + reconnects
    "reconnect_forever",  # get_result never stops answering reconnect
    "error",  # get_result ends with face_not_found
    "limit",  # create_queue answers {"success": false, "error": "LIMIT"}
    "500",  # create_queue answers HTTP 500, plain text
    "503",  # create_queue answers HTTP 503, plain text
    "lost_result",  # success, but GET /download/<N>.png answers 404
    "hang",  # create_queue never answers (until the client disconnects)
    "result_other_host",  # the result URL points at another host (ELSEWHERE_HOST)
    "huge_result",  # the result download never ends (no length; HUGE_RESULT_BYTES at most)
    "hang_download",  # the result download never answers
    *MISBEHAVIOURS,
    *BAD_IMAGE_MODES,
)
HUGE_RESULT_BYTES = 256 * 1024 * 1024
RESULT_URL_LOCATIONS: tuple[str, ...] = ("top", "data", "both")
METHODS: tuple[str, ...] = ("generate_image2image", "mix_images", "deepfake_photo")
URL_FIELDS: tuple[str, ...] = ("url", "url_image_target")

_REQUIRED: dict[str, tuple[str, ...]] = {
    "generate_image2image": ("url", "content"),
    "mix_images": ("url_image_target", "url"),
    "deepfake_photo": ("url", "url_image_target"),
}
_PLAIN_ERRORS: dict[str, tuple[int, bytes]] = {
    "500": (500, b"Internal Server Error\n"),
    "503": (503, b"Service Temporarily Unavailable\n"),
}
_API_PATH = re.compile(r"^/api_ai/([A-Za-z0-9_]+)/?$")
_DOWNLOAD_PATH = re.compile(r"^/download/(\d+)\.png$")
_RESULT_SIZE = 64  # PNG_BYTES is 64x64


@dataclass
class _Task:
    queueid: int
    method: str
    mode: str
    ready_at: float  # time.monotonic()
    reconnects_needed: int
    downloads: dict[str, dict[str, Any]]  # url -> record; the same dict as in the request record
    generation: int
    downloads_done: bool = False
    url_failed: bool = False
    reconnects_sent: int = 0
    result_reported: bool = False
    urls: dict[str, list[str]] = field(default_factory=dict)  # url -> form fields carrying it


class FakeTurbotext(FakeServer):
    """A fake Turbotext ``/api_ai`` server; see the module docstring."""

    MODES = MODES
    SERVER_NAME = "fake-turbotext"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
        default_mode: str = "image",
        inspect: bool = True,
        reconnects: int = 1,
        result_url_location: str = "both",
        download_timeout: float = 10.0,
    ) -> None:
        _check_location(result_url_location)
        super().__init__(host=host, port=port, delay=delay, default_mode=default_mode, inspect=inspect)
        self.reconnects: int = int(reconnects)
        self.result_url_location: str = result_url_location
        self._initial_reconnects = self.reconnects
        self._initial_location = result_url_location
        self.download_timeout = float(download_timeout)
        self.polls = 0
        self.result_downloads = 0
        self.result_requests: list[dict[str, str]] = []
        self.downloads: list[dict[str, Any]] = []
        self._tasks: dict[int, _Task] = {}
        self._last_queueid = 0
        self._generation = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._http: httpx.AsyncClient | None = None

    # ----------------------------------------------------------------- control (thread-safe)

    def reset(self) -> None:
        """Clear counters, records, tasks and the script; restore the initial settings.

        Queue ids keep increasing, so ids handed out before the reset answer ``queue_not_found``.
        """
        super().reset()
        with self._lock:
            self.reconnects = self._initial_reconnects
            self.result_url_location = self._initial_location
            self.polls = 0
            self.result_downloads = 0
            self.result_requests = []
            self.downloads = []
            self._tasks = {}
            self._generation += 1  # downloads still running belong to the old generation

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        with self._lock:
            stats.update(
                {
                    "polls": self.polls,
                    "downloads": len(self.downloads),
                    "result_downloads": self.result_downloads,
                    "tasks": len(self._tasks),
                    "pending_downloads": sum(not t.downloads_done for t in self._tasks.values()),
                    "reconnects": self.reconnects,
                    "result_url_location": self.result_url_location,
                    "last_queueid": self._last_queueid,
                }
            )
        return stats

    # ----------------------------------------------------------------- lifecycle

    async def _serve(self, on_ready: Callable[[], None]) -> None:
        self._http = httpx.AsyncClient(timeout=self.download_timeout, follow_redirects=True, trust_env=False)
        try:
            await super()._serve(on_ready)
        finally:
            tasks = list(self._background)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._http.aclose()
            self._http = None

    # ----------------------------------------------------------------- HTTP

    async def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
    ) -> _Response | None:
        download = _DOWNLOAD_PATH.match(path)
        if download is not None and method in ("GET", "HEAD"):
            await self._serve_result(int(download.group(1)), method == "HEAD", headers, reader)
            return None
        api = _API_PATH.match(path)
        if api is None:
            return 404, {"success": False, "error": "not_found"}
        if method != "POST":
            return 405, {"success": False, "error": "method_not_allowed"}
        if api.group(1) not in METHODS:
            return 404, {"success": False, "error": "method_not_found"}
        fields = _parse_form(body)
        auth = headers.get("authorization", "")
        scheme, _, api_key = auth.partition(" ")
        api_key = api_key.strip() if scheme.lower() == "bearer" else ""
        record: dict[str, Any] = {
            "method": api.group(1),
            "do": fields.get("do", ""),
            "api_key": api_key,
            "fields": fields,
            "content_type": headers.get("content-type", ""),
        }
        if record["do"] == "create_queue":
            return await self._create_queue(record, reader)
        with self._lock:
            self.requests.append(record)
        if not api_key:
            return 401, {"success": False, "error": "auth_error"}
        if record["do"] == "get_result":
            return self._get_result(record, headers)
        return 200, {"success": False, "error": "params_error"}

    async def _serve_result(
        self, queueid: int, head_only: bool, headers: dict[str, str], reader: asyncio.StreamReader
    ) -> None:
        with self._lock:
            self.result_requests.append(headers)
            task = self._tasks.get(queueid)
            found = task is not None and task.result_reported and task.mode != "lost_result"
            if found:
                self.result_downloads += 1
        mode = task.mode if task is not None and found else ""
        if not found:
            await _write_raw(404, "text/plain; charset=utf-8", b"Not Found\n", head_only)
        elif mode == "hang_download":
            await _wait_for_disconnect(reader)
        elif mode == "huge_result" and not head_only:
            await _write_endless_png()
        else:
            image = BAD_IMAGES.get(mode) or self.result_png or PNG_BYTES
            await _write_raw(200, "image/png", image, head_only)

    # ----------------------------------------------------------------- create_queue

    async def _create_queue(self, record: dict[str, Any], reader: asyncio.StreamReader) -> _Response | None:
        fields: dict[str, str] = record["fields"]
        downloads: dict[str, dict[str, Any]] = {}  # filled in place once the URLs are fetched
        mode, number = self._begin({**record, "downloads": downloads})
        try:
            if not record["api_key"]:
                return 401, {"success": False, "error": "auth_error"}
            if mode in _PLAIN_ERRORS:
                status, text = _PLAIN_ERRORS[mode]
                await _write_raw(status, "text/plain; charset=utf-8", text)
                return None
            if mode == "hang":
                await _wait_for_disconnect(reader)
                return None
            if mode in MISBEHAVIOURS:
                await self._misbehave(mode, reader, {"success": True, "queueid": self._last_queueid + 1})
                return None
            if self.inspect and not _params_ok(record["method"], fields):
                return 200, {"success": False, "error": "params_error"}
            if mode == "limit":
                return 200, {"success": False, "error": "LIMIT"}
            urls: dict[str, list[str]] = {}
            for name in URL_FIELDS:
                if fields.get(name):
                    urls.setdefault(fields[name], []).append(name)
            with self._lock:
                self._last_queueid += 1
                task = _Task(
                    queueid=self._last_queueid,
                    method=record["method"],
                    mode=mode,
                    ready_at=time.monotonic() + self.delay,
                    reconnects_needed=self.reconnects,
                    downloads=downloads,
                    generation=self._generation,
                    urls=urls,
                )
                self._tasks[task.queueid] = task
                for stored in reversed(self.requests):
                    if stored.get("n") == number:
                        stored["queueid"] = task.queueid
                        break
            background = asyncio.get_running_loop().create_task(self._download_all(task))
            self._background.add(background)
            background.add_done_callback(self._background.discard)
            return 200, {"success": True, "queueid": task.queueid}
        finally:
            self._finish()

    async def _download_all(self, task: _Task) -> None:
        results = await asyncio.gather(*(self._download(url) for url in task.urls))
        with self._lock:
            current = task.generation == self._generation
            for url, result in zip(task.urls, results, strict=True):
                task.downloads[url] = result
                if current:
                    self.downloads.append(
                        {
                            "queueid": task.queueid,
                            "method": task.method,
                            "fields": task.urls[url],
                            "url": url,
                            **result,
                        }
                    )
                if result["status"] != 200:
                    task.url_failed = True
            task.downloads_done = True

    async def _download(self, url: str) -> dict[str, Any]:
        started = time.monotonic()
        client = self._http
        assert client is not None
        try:
            response = await client.get(url)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return {
                "status": None,
                "length": None,
                "content_type": None,
                "error": f"{type(exc).__name__}: {exc}",
                "seconds": time.monotonic() - started,
            }
        return {
            "status": response.status_code,
            "length": len(response.content),
            "content_type": response.headers.get("content-type"),
            "error": None if response.status_code == 200 else f"HTTP {response.status_code}",
            "seconds": time.monotonic() - started,
        }

    # ----------------------------------------------------------------- get_result

    def _get_result(self, record: dict[str, Any], headers: dict[str, str]) -> _Response:
        raw_id = record["fields"].get("queueid", "").strip()
        with self._lock:
            self.polls += 1
            if not raw_id:
                return 200, {"success": False, "error": "params_error"}
            task = self._tasks.get(int(raw_id)) if raw_id.isdigit() else None
            if task is None:
                return 200, {"success": False, "error": "queue_not_found"}
            record["queueid"] = task.queueid
            if (
                task.mode == "reconnect_forever"
                or not task.downloads_done
                or time.monotonic() < task.ready_at
                or task.reconnects_sent < task.reconnects_needed
            ):
                task.reconnects_sent += 1
                return 200, {"action": "reconnect"}
            if task.url_failed:
                return 200, {"success": False, "error": "url_error"}
            if task.mode == "error":
                return 200, {"success": False, "error": "face_not_found"}
            task.result_reported = True
            location = self.result_url_location
        host = headers.get("host")
        base = f"http://{host}" if host else self.base_url
        uploaded = f"{base}/download/{task.queueid}.png"
        if task.mode == "result_other_host":
            uploaded = f"http://{ELSEWHERE_HOST}:{self.port}{ELSEWHERE_PATH}/{task.queueid}.png"
        data: dict[str, Any] = {
            "image": [f"image/{task.method}_id{task.queueid}_0.png"],
            "width": _RESULT_SIZE,
            "height": _RESULT_SIZE,
        }
        payload: dict[str, Any] = {"success": True, "error": "", "data": data}
        if location in ("data", "both"):
            data["uploaded_image"] = uploaded
        if location in ("top", "both"):
            payload["uploaded_image"] = uploaded
        return 200, payload

    # ----------------------------------------------------------------- /__ control endpoints

    def _control(self, method: str, path: str, query: dict[str, list[str]]) -> _Response:
        """FakeServer's endpoints plus ``POST /__config?reconnects=N&result_url_location=top|data|both``."""
        if path != "/__config":
            return super()._control(method, path, query)
        if method != "POST":
            return 405, {"error": "use POST"}
        reconnects = query["reconnects"][-1] if query.get("reconnects") else None
        location = query["result_url_location"][-1] if query.get("result_url_location") else None
        try:
            count = int(reconnects) if reconnects is not None else None
            if count is not None and count < 0:
                raise ValueError("reconnects must be >= 0")
            if location is not None:
                _check_location(location)
        except ValueError as exc:
            return 400, {"error": str(exc)}
        if count is not None:
            self.reconnects = count
        if location is not None:
            self.result_url_location = location
        return 200, self.stats()


def _parse_form(body: bytes) -> dict[str, str]:
    """Form fields as strings; the last value wins for repeated names (like PHP's ``$_POST``)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _params_ok(method: str, fields: dict[str, str]) -> bool:
    if any(not fields.get(name, "").strip() for name in _REQUIRED[method]):
        return False
    checks: dict[str, Callable[[str], bool]] = {
        "strength": lambda v: _in_range(int(v), 0, 80),
        "seed": lambda v: _in_range(int(v), 1, 10**10),
        "scale": lambda v: _in_range(float(v), 0.1, 20),
        "face_restore": lambda v: v.lower() in ("true", "false", "1", "0"),
    }
    for name, check in checks.items():
        value = fields.get(name)
        if value is None:
            continue
        try:
            if not check(value.strip()):
                return False
        except ValueError:
            return False
    return True


def _in_range(value: float, low: float, high: float) -> bool:
    return low <= value <= high


async def _write_raw(status: int, content_type: str, body: bytes, head_only: bool = False) -> None:
    await write_raw(status, content_type, body, FakeTurbotext.SERVER_NAME, head_only=head_only)


async def _write_endless_png() -> None:
    """A PNG that never ends: no length, megabytes after the image until the client hangs up."""
    writer = _WRITER.get()
    writer.write(raw_head(200, "image/png", None, FakeTurbotext.SERVER_NAME) + PNG_BYTES)
    padding = bytes(1024 * 1024)
    with contextlib.suppress(ConnectionError):
        for _ in range(HUGE_RESULT_BYTES // len(padding)):
            writer.write(padding)
            await writer.drain()


def _check_location(location: str) -> None:
    if location not in RESULT_URL_LOCATIONS:
        raise ValueError(
            f"unknown result_url_location {location!r}; expected one of {', '.join(RESULT_URL_LOCATIONS)}"
        )


def main(argv: list[str] | None = None) -> None:
    run_cli(FakeTurbotext, "Fake Turbotext photo API (/api_ai/<method> queue).", 9913, argv)


if __name__ == "__main__":
    main()
