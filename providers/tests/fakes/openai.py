"""A small fake of OpenAI's GPT Image edits API (``POST /v1/images/edits``).

It runs on the HTTP/1.1 server of :mod:`providers.tests.fakes.gemini` (``FakeServer``), so it has the
same life cycle and control API as ``FakeGemini``:

* pytest: ``fake = FakeOpenAI(); fake.start()`` runs it in a daemon thread; ``fake.base_url`` is then
  ``http://127.0.0.1:<port>`` (the API lives under ``/v1``); ``fake.stop()`` ends it.
* benchmarks: ``python -m providers.tests.fakes.openai --port 9912 --delay 1.0`` runs it in the
  foreground until SIGINT/SIGTERM, steered through ``/__delay``, ``/__mode``, ``/__stats`` and
  ``/__reset``.

Every edit request is counted, recorded (model, bearer key, the text form fields, and per uploaded
image its filename, content type and byte length) and consumes one mode from the script queue
(``default_mode`` when it is empty). It then waits ``delay`` seconds, applies the real API's checks
(401 without a bearer key; 400 for a body that is not ``multipart/form-data``, no prompt, no image,
more than 16 images, an image that is not JPEG/PNG/WebP by its declared type or its bytes, or a bad
``size``, ``quality``, ``output_format``, ``output_compression``, ``background``, ``n`` or
``input_fidelity``) and finally answers according to the mode (including the shared server's
misbehaviours and bad images, see :mod:`providers.tests.fakes.gemini`).
"""

from __future__ import annotations

import asyncio
import base64
import email.message
import email.utils
import io
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from providers.tests.fakes.gemini import (
    _THREAD_PARSE_THRESHOLD,
    BAD_IMAGE_MODES,
    BAD_IMAGES,
    MISBEHAVIOURS,
    PNG_BYTES,
    FakeServer,
    _Response,
    _wait_for_disconnect,
    run_cli,
)

MODES: tuple[str, ...] = (
    "image", "429", "quota", "500", "503", "400", "moderation", "hang", *MISBEHAVIOURS, *BAD_IMAGE_MODES,
)  # fmt: skip

EDITS_PATH = "/v1/images/edits"
MAX_IMAGES = 16
MAX_PROMPT_CHARS = 32000
SIZES: tuple[str, ...] = ("1024x1024", "1024x1536", "1536x1024", "auto")
QUALITIES: tuple[str, ...] = ("low", "medium", "high", "auto")
OUTPUT_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
BACKGROUNDS: tuple[str, ...] = ("transparent", "opaque", "auto")
INPUT_FIDELITIES: tuple[str, ...] = ("high", "low")
IMAGE_FIELDS: tuple[str, ...] = ("image", "image[]")
KNOWN_FIELDS: frozenset[str] = frozenset(
    {
        "model",
        "prompt",
        "size",
        "quality",
        "output_format",
        "output_compression",
        "background",
        "n",
        "input_fidelity",
        "moderation",
        "user",
        "stream",
        "partial_images",
        "response_format",
    }
)
_MIME_TYPES: dict[str, str] = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp"}
_IMAGE_INPUT_TOKENS = 388
# output tokens per image by quality, for a square / a portrait or landscape size
_OUTPUT_TOKENS: dict[str, tuple[int, int]] = {"low": (272, 408), "medium": (1056, 1584), "high": (4160, 6240)}


def _convert(fmt: str, png: bytes = PNG_BYTES) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(out, format=fmt, quality=85)
    return out.getvalue()


JPEG_BYTES: bytes = _convert("JPEG")
WEBP_BYTES: bytes = _convert("WEBP")
IMAGE_BYTES: dict[str, bytes] = {"png": PNG_BYTES, "jpeg": JPEG_BYTES, "webp": WEBP_BYTES}
_IMAGE_B64: dict[str, str] = {
    fmt: base64.b64encode(data).decode("ascii") for fmt, data in IMAGE_BYTES.items()
}


@dataclass
class OpenAIError:
    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def response(self) -> _Response:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return self.status, {"error": error}


_ERROR_MODES: dict[str, OpenAIError] = {
    "429": OpenAIError(
        429,
        "Rate limit reached for images per minute (IPM) in organization org-fake: Limit 5, Used 5, "
        "Requested 1. Please try again in 12s. Visit https://platform.openai.com/account/rate-limits "
        "to learn more.",
        "requests",
        code="rate_limit_exceeded",
    ),
    "quota": OpenAIError(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        code="insufficient_quota",
    ),
    "500": OpenAIError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    ),
    "503": OpenAIError(503, "The server is overloaded or not ready yet.", "server_error"),
    "400": OpenAIError(400, "Invalid request (fake 400)."),
    "moderation": OpenAIError(
        400,
        "Your request was rejected by the safety system. If you believe this is an error, contact us "
        "at help.openai.com and include the request ID req_fake.",
        "image_generation_user_error",
        code="moderation_blocked",
    ),
}


def sniff_image(data: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or ``"webp"`` from the leading bytes, None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


# ----------------------------------------------------------------- multipart/form-data


@dataclass
class _Part:
    name: str
    filename: str | None  # None: a text field
    content_type: str | None
    length: int
    head: bytes  # the first bytes (enough to sniff an image format)
    text: str | None  # the decoded value of a text field


class _MultipartError(ValueError):
    pass


def _header_params(name: str, value: str) -> email.message.Message:
    message = email.message.Message()
    message[name] = value
    return message


def _param(message: email.message.Message, name: str, header: str) -> str | None:
    value = message.get_param(name, header=header)
    if value is None:
        return None
    return email.utils.collapse_rfc2231_value(value)


def multipart_boundary(content_type: str | None) -> str | None:
    """The boundary of a ``multipart/form-data`` Content-Type, None for any other type."""
    if not content_type:
        return None
    message = _header_params("content-type", content_type)
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = _param(message, "boundary", "content-type")
    return boundary or None


def _make_part(raw_headers: bytes, body: bytes, start: int, end: int) -> _Part:
    headers: dict[str, str] = {}
    for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise _MultipartError("a part has no Content-Disposition header")
    message = _header_params("content-disposition", disposition)
    name = _param(message, "name", "content-disposition")
    if message.get_content_disposition() != "form-data" or name is None:
        raise _MultipartError("a part is not form-data with a name")
    filename = _param(message, "filename", "content-disposition")
    text = None if filename is not None else body[start:end].decode("utf-8", "replace")
    return _Part(name, filename, headers.get("content-type"), end - start, body[start : start + 16], text)


def parse_multipart(body: bytes, boundary: str) -> list[_Part]:
    """Split a ``multipart/form-data`` body (CRLF line breaks, binary-safe, no copies of file data)."""
    delimiter = b"--" + boundary.encode("latin-1")
    separator = b"\r\n" + delimiter
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:  # skip a preamble
        found = body.find(separator)
        if found < 0:
            raise _MultipartError("the body does not contain the multipart boundary")
        pos = found + len(separator)
    parts: list[_Part] = []
    while True:
        if body.startswith(b"--", pos):
            return parts  # the close delimiter; an epilogue is ignored
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise _MultipartError("malformed boundary line")
        head_end = body.find(b"\r\n\r\n", line_end)
        if head_end < 0:
            raise _MultipartError("unterminated part headers")
        start = head_end + 4
        end = body.find(separator, start)
        if end < 0:
            raise _MultipartError("missing closing boundary")
        parts.append(_make_part(body[line_end + 2 : head_end], body, start, end))
        pos = end + len(separator)


# ----------------------------------------------------------------- validation


@dataclass
class _Inspection:
    record: dict[str, Any]  # model / fields / images for ``requests``
    error: OpenAIError | None
    fields: dict[str, str] = field(default_factory=dict)
    images: int = 0


def _invalid(message: str, param: str | None, code: str | None = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def _choice(fields: dict[str, str], name: str, allowed: tuple[str, ...]) -> OpenAIError | None:
    value = fields.get(name)
    if value is None or value in allowed:
        return None
    supported = ", ".join(f"'{v}'" for v in allowed[:-1]) + f", and '{allowed[-1]}'"
    return _invalid(f"Invalid value: '{value}'. Supported values are: {supported}.", name)


def _integer(fields: dict[str, str], name: str, low: int, high: int) -> OpenAIError | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return _invalid(
            f"Invalid type for '{name}': expected an integer, but got a string instead.", name, "invalid_type"
        )
    if number < low:
        return _invalid(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {number} "
            "instead.",
            name,
            "integer_below_min_value",
        )
    if number > high:
        return _invalid(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {number} "
            "instead.",
            name,
            "integer_above_max_value",
        )
    return None


def _check_image(part: _Part, param: str, index: int) -> OpenAIError | None:
    declared = (part.content_type or "").split(";", 1)[0].strip().lower()
    if not declared:
        return _invalid(
            f"Invalid file '{param}': failed to determine mimetype. Ensure you are providing the file's "
            "mimetype as part of the 'Content-Type' header.",
            param,
            "missing_file_mimetype",
        )
    if declared not in _MIME_TYPES:
        return _invalid(
            f"Invalid file '{param}': unsupported mimetype ('{declared}'). Supported file formats are "
            "'image/jpeg', 'image/png', and 'image/webp'.",
            param,
            "unsupported_file_mimetype",
        )
    if sniff_image(part.head) is None:
        return _invalid(
            f"Invalid image file or mode for image {index + 1}, please check your image file.",
            param,
            "invalid_image_file",
        )
    return None


def _validate(fields: dict[str, str], images: list[_Part]) -> OpenAIError | None:
    for name in fields:
        if name not in KNOWN_FIELDS:
            return _invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    prompt = fields.get("prompt")
    if prompt is None:
        return _invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if not prompt:
        return _invalid(
            "Invalid 'prompt': string too short. Expected a string with minimum length 1, but got an empty "
            "string instead.",
            "prompt",
            "empty_string",
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        return _invalid(
            f"Invalid 'prompt': string too long. Expected a string with maximum length {MAX_PROMPT_CHARS}, "
            f"but got a string with length {len(prompt)} instead.",
            "prompt",
            "string_above_max_length",
        )
    if not images:
        return _invalid("Missing required parameter: 'image'.", "image", "missing_required_parameter")
    if len(images) > MAX_IMAGES:
        return _invalid(
            f"Invalid 'image': array too long. Expected an array with maximum length {MAX_IMAGES}, but got "
            f"an array with length {len(images)} instead.",
            "image",
            "array_above_max_length",
        )
    for index, part in enumerate(images):
        param = f"image[{index}]" if part.name == "image[]" else "image"
        error = _check_image(part, param, index)
        if error is not None:
            return error
    error = (
        _choice(fields, "size", SIZES)
        or _choice(fields, "quality", QUALITIES)
        or _choice(fields, "output_format", OUTPUT_FORMATS)
        or _choice(fields, "background", BACKGROUNDS)
        or _choice(fields, "input_fidelity", INPUT_FIDELITIES)
        or _integer(fields, "n", 1, 10)
        or _integer(fields, "output_compression", 0, 100)
    )
    if error is not None:
        return error
    output_format = fields.get("output_format", "png")
    if "output_compression" in fields and output_format == "png":
        return _invalid(
            "Compression less than 100 is not supported for PNG output format.", "output_compression"
        )
    if fields.get("background") == "transparent" and output_format == "jpeg":
        return _invalid("Transparent background is not supported for JPEG output format.", "background")
    return None


def _inspect(raw: bytes, content_type: str | None) -> _Inspection:
    """Parse, record-friendly summarise and validate an edits body like the real API does."""
    record: dict[str, Any] = {"model": None, "fields": None, "images": None}
    boundary = multipart_boundary(content_type)
    if boundary is None:
        return _Inspection(
            record,
            _invalid(
                f"Invalid Content-Type header ({content_type}), expected multipart/form-data.", None, None
            ),
        )
    try:
        parts = parse_multipart(raw, boundary)
    except _MultipartError as exc:
        return _Inspection(record, _invalid(f"Could not parse multipart form: {exc}.", None, None))
    fields: dict[str, str] = {}
    images: list[_Part] = []
    others: list[dict[str, Any]] = []
    for part in parts:
        if part.text is not None:
            fields[part.name] = part.text
        elif part.name in IMAGE_FIELDS:
            images.append(part)
        else:
            others.append({"name": part.name, "filename": part.filename, "length": part.length})
    record = {
        "model": fields.get("model"),
        "fields": fields,
        "images": [
            {"filename": p.filename, "content_type": p.content_type, "length": p.length} for p in images
        ],
    }
    if others:
        record["files"] = others
    return _Inspection(record, _validate(fields, images), fields, len(images))


def _success(fields: dict[str, str], image_count: int) -> dict[str, Any]:
    output_format = fields.get("output_format", "png")
    quality = fields.get("quality", "auto")
    quality = "high" if quality == "auto" else quality
    size = fields.get("size", "auto")
    size = "1024x1024" if size == "auto" else size
    n = int(fields.get("n", "1"))
    background = "transparent" if fields.get("background") == "transparent" else "opaque"
    text_tokens = max(1, len(fields.get("prompt", "")) // 4)
    image_tokens = image_count * _IMAGE_INPUT_TOKENS
    output_tokens = n * _OUTPUT_TOKENS[quality][0 if size == "1024x1024" else 1]
    return {
        "created": int(time.time()),
        "background": background,
        "data": [{"b64_json": _IMAGE_B64[output_format]} for _ in range(n)],
        "output_format": output_format,
        "quality": quality,
        "size": size,
        "usage": {
            "input_tokens": image_tokens + text_tokens,
            "output_tokens": output_tokens,
            "total_tokens": image_tokens + text_tokens + output_tokens,
            "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens},
        },
    }


def _bearer(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header, ``""`` when missing or not bearer."""
    scheme, _, key = (authorization or "").strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


class FakeOpenAI(FakeServer):
    """A fake OpenAI ``images/edits`` server; see the module docstring."""

    MODES = MODES
    SERVER_NAME = "fake-openai"

    async def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
    ) -> _Response | None:
        if path.rstrip("/") != EDITS_PATH or method != "POST":
            return OpenAIError(404, f"Invalid URL ({method} {path})").response()
        api_key = _bearer(headers.get("authorization"))
        return await self._edit(api_key, headers.get("content-type"), body, reader)

    # ----------------------------------------------------------------- images/edits

    async def _edit(
        self, api_key: str, content_type: str | None, raw: bytes, reader: asyncio.StreamReader
    ) -> _Response | None:
        if not self.inspect:
            inspection = _Inspection({"model": None, "fields": None, "images": None}, None, images=1)
        elif len(raw) > _THREAD_PARSE_THRESHOLD:
            inspection = await asyncio.to_thread(_inspect, raw, content_type)
        else:
            inspection = _inspect(raw, content_type)
        del raw
        record = inspection.record
        mode, _ = self._begin({"model": record.pop("model"), "api_key": api_key, **record})
        try:
            await self._wait_delay()
            if not api_key:
                return OpenAIError(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an Authorization "
                    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
                    "field (with blank username) if you're accessing the API from your browser and are "
                    "prompted for a username and password. You can obtain an API key from "
                    "https://platform.openai.com/account/api-keys.",
                    code="invalid_api_key",
                ).response()
            if inspection.error is not None:
                return inspection.error.response()
            if mode == "hang":
                await _wait_for_disconnect(reader)
                return None
            if mode in _ERROR_MODES:
                return _ERROR_MODES[mode].response()
            answer = _success(inspection.fields, inspection.images)
            if self.result_png is not None:
                converted = _convert(answer["output_format"].upper(), self.result_png)
                answer["data"] = [{"b64_json": base64.b64encode(converted).decode()}]
            if mode in BAD_IMAGES:
                answer["data"] = [{"b64_json": base64.b64encode(BAD_IMAGES[mode]).decode()}]
            if mode in MISBEHAVIOURS:
                await self._misbehave(mode, reader, answer)
                return None
            return 200, answer
        finally:
            self._finish()


def main(argv: list[str] | None = None) -> None:
    run_cli(FakeOpenAI, "Fake OpenAI GPT Image API (images/edits).", 9912, argv)


if __name__ == "__main__":
    main()
