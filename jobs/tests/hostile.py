"""Hostile booth requests, generated: what the fuzz test (``test_ingest_fuzz.py``) and ``bench/fuzz.py``
throw at ``POST /ingest/<slot_id>``, and the rules every answer must keep.

A request starts as the booth's own (DSLR Remote Pro's fields, a small photo) and gets any mix of:
a damaged photo (truncated, flipped bytes, zeroed run, wrong or bare magic bytes, random bytes), a
malformed multipart envelope (boundary that does not match, no final boundary, no boundary at all, LF
line ends, a preamble, the body cut short, another content type, base64 parts), extra and duplicated
parts (thousands of fields, duplicated photos and passwords), oversized or odd field values and names
(unicode, NUL, undecodable bytes), file names with path traversal or unicode, part headers of 100 KB,
slot ids that are unicode, NUL, path traversal or too long, huge request headers, chunked bodies.

Every request is valid HTTP/1.1 framing (bad framing is uvicorn's to refuse, before our code runs);
everything inside it is fair game. The rules (``answer_problems``): never a 5xx, every refusal is the
catalogue's JSON with its own status, and a request with nothing wrong is answered with the image.
"""

from __future__ import annotations

import io
import json
import string
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st
from PIL import Image

from jobs.tests.booth import BOUNDARY, BoothResponse, booth_fields, make_jpeg, make_png

# Statuses a refusal may have, from the catalogue (photochanger.errors.HTTP_STATUS), without importing
# Django: bench/fuzz.py uses this module outside it.
REFUSALS = {
    "invalid_request": 400,
    "invalid_password": 401,
    "slot_not_found": 404,
    "slot_disabled": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
}


@cache
def photos() -> dict[str, tuple[bytes, str]]:
    """Small photos of each accepted kind (small: the fuzz is about the envelope, not the pixels)."""
    webp = io.BytesIO()
    Image.effect_noise((64, 48), 50).convert("RGB").save(webp, "WEBP")
    return {
        "jpeg": (make_jpeg(96, 64, noise=True), "image/jpeg"),
        "png": (make_png(48, 32), "image/png"),
        "webp": (webp.getvalue(), "image/webp"),
    }


@dataclass
class HostileRequest:
    """One generated request, and what was done to it (``changes``; empty: the booth's own request)."""

    path: str
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    changes: list[str] = field(default_factory=list)

    @property
    def harmless(self) -> bool:
        """Nothing was changed that a server may refuse: it must be answered with the image."""
        return not self.changes

    def describe(self) -> str:
        return ", ".join(self.changes) or "the booth's own request"


# --- The photo -------------------------------------------------------------------------------------

OTHER_MAGIC = [
    b"GIF89a",
    b"%PDF-1.4\n",
    b"BM",
    b"II*\x00",
    b"\x00\x00\x01\x00",
    b"<svg ",
    b"RIFF\x00\x00\x00\x00AVI ",
]
ACCEPTED_MAGIC = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    b"\x00\x00\x00\x18ftypheic",
]


PHOTO_DAMAGE = ["truncated", "flipped", "zeroed", "other magic", "bare magic", "random", "empty"]


@st.composite
def damaged_photo(draw: Any, photo: bytes) -> tuple[bytes, str]:
    """The photo with one kind of damage, and its name."""
    kind = draw(st.sampled_from(PHOTO_DAMAGE))
    if kind == "truncated":
        return photo[: draw(st.integers(0, len(photo) - 1))], "truncated photo"
    if kind == "flipped":
        damaged = bytearray(photo)
        for position in draw(st.lists(st.integers(0, len(photo) - 1), min_size=1, max_size=8)):
            damaged[position] ^= draw(st.integers(1, 255))
        return bytes(damaged), "flipped bytes in the photo"
    if kind == "zeroed":
        start = draw(st.integers(0, len(photo) - 1))
        length = draw(st.integers(1, 4096))
        return photo[:start] + b"\x00" * length + photo[start + length :], "zeroed run in the photo"
    if kind == "other magic":
        magic = draw(st.sampled_from(OTHER_MAGIC))
        return magic + photo[len(magic) :], "photo with another format's magic bytes"
    if kind == "bare magic":
        return draw(st.sampled_from(ACCEPTED_MAGIC)) + draw(st.binary(max_size=2048)), "magic bytes then junk"
    if kind == "random":
        return draw(st.binary(max_size=4096)), "random bytes as the photo"
    return b"", "empty photo"


# --- Text ------------------------------------------------------------------------------------------

TRAVERSAL_NAMES = [
    "../../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/shadow", "C:\\Users\\booth\\IMG_0003.JPG",
    "....//....//x.jpg", "%2e%2e%2fx.jpg", "IMG\x00.jpg", " ", "a" * 251 + ".jpg", 'quo"te.jpg', "фото №1.jpg",
    "🙂.jpg", "\u202egpj.exe", "con.jpg", "&quot;.jpg",
]  # fmt: skip
# Names a browser sends for an empty file input, or that are only a folder: no file at all (400).
NAMES_OF_NO_FILE = ["", ".", "..", "photos/", "C:\\photos\\", "../"]


def odd_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Unicode (any plane, control characters, NUL) — never lone surrogates, which no encoder sends."""
    return st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size)


ODD_SLOT_IDS = ["", "..", "../admin", "slot-001/../slot-002", "slot-001\x00", "SLOT-001", "slot-1", "s" * 400]


# --- The multipart body ----------------------------------------------------------------------------

# What RFC 2046 allows in a boundary (bar the space, which would need quoting).
BOUNDARY_CHARACTERS = string.ascii_letters + string.digits + "'()+_,-./:=?"


def field_part(name: bytes, value: bytes, *, headers: bytes = b"") -> bytes:
    return b'Content-Disposition: form-data; name="' + name + b'"\r\n' + headers + b"\r\n" + value


def file_part(
    name: bytes, filename: bytes, content_type: bytes, data: bytes, *, headers: bytes = b""
) -> bytes:
    return (
        b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename + b'"\r\n'
        b"Content-Type: " + content_type + b"\r\n" + headers + b"\r\n" + data
    )


def quoted(text: str) -> bytes:
    """A name as a browser puts it in a Content-Disposition: UTF-8, quotes and line ends escaped."""
    return text.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22").encode("utf-8")


# What may be done to a request that a server may refuse. Each request gets up to three of them (none:
# the booth's own request), so every change is tried alone as well as mixed with others.
CHANGES = [
    "photo", "password", "no password", "many fields", "big field value", "undecodable value",
    "duplicated password", "file field", "long part header", "duplicated photo", "part without disposition",
    "bad base64", "envelope", "slot id", "no file name", "long file name", "charset",
]  # fmt: skip
ENVELOPES = [
    "other boundary", "no final boundary", "no boundary", "LF line ends", "cut short", "urlencoded", "json",
    "no content type", "long boundary", "empty body",
]  # fmt: skip


@st.composite
def hostile_requests(draw: Any, password: str) -> HostileRequest:
    """The booth's request with up to three hostile changes (see the module's docstring), always dressed
    in harmless variety: unicode fields and file names, big request headers, chunked bodies, a preamble."""
    chosen = set(draw(st.lists(st.sampled_from(CHANGES), unique=True, max_size=3)))
    if draw(st.integers(0, 3)) == 0:  # damaged photos are what booths really send: more of them
        chosen.add("photo")
    changes: list[str] = []
    photo_kind = draw(st.sampled_from(sorted(photos())))
    photo, photo_type = photos()[photo_kind]
    if "photo" in chosen:
        photo, damage = draw(damaged_photo(photo))
        changes.append(damage)

    fields = [(name.encode(), value.encode()) for name, value in booth_fields(photo, password)]
    if "password" in chosen:
        wrong = draw(st.sampled_from(["wrong-password", "", "p" * 4096, "пароль\x00"]))
        fields = [(name, wrong.encode() if name == b"password" else value) for name, value in fields]
        changes.append("wrong, empty or odd password")
    if "no password" in chosen:
        fields = [item for item in fields if item[0] != b"password"]
        changes.append("no password field")
    # Survey answers: a few are what booths send; past 200 fields in all, the form is refused.
    extra_fields = (
        draw(st.sampled_from([191, 1000, 5000])) if "many fields" in chosen else draw(st.integers(0, 5))
    )
    fields += [(f"survey_{number}".encode(), b"yes") for number in range(extra_fields)]
    if "many fields" in chosen:
        changes.append(f"{extra_fields} extra fields")
    if draw(st.booleans()):  # survey answers in any language
        name, value = draw(odd_text()), draw(odd_text(200))
        fields.append((quoted(f"survey {name}"), value.encode("utf-8")))
    if "big field value" in chosen:
        size = draw(st.sampled_from([2001, 100_000, 5_000_000]))
        fields.append((b"survey_essay", "ж".encode() * (size // 2)))
        changes.append(f"a {size:,}-byte field value")
    if "undecodable value" in chosen:
        fields.append((b"undecodable", draw(st.binary(min_size=1, max_size=64))))
        changes.append("field value that is not UTF-8")
    if "duplicated password" in chosen:
        fields.append((b"password", b"second-password"))
        changes.append("duplicated password field")

    file_field: bytes | None = draw(st.sampled_from([b"fileToUpload", b"fileToUpload", b"file"]))
    if "file field" in chosen:
        file_field = draw(st.sampled_from([b"photo", b"FILETOUPLOAD", b"", None]))
        changes.append("no file part under a known name")
    filename = b"IMG_0003.JPG"
    if draw(st.booleans()):  # any file name is fine: the photo is stored under the job's id
        random_name = odd_text(60).map(lambda text: f"{text}_IMG.jpg")
        filename = quoted(draw(st.one_of(st.sampled_from(TRAVERSAL_NAMES), random_name)))
    if "no file name" in chosen:
        filename = quoted(draw(st.sampled_from(NAMES_OF_NO_FILE)))
        changes.append("a file name that names no file")
    if "long file name" in chosen:  # no file system has such names; the part's header grows past 1 KB
        filename = b"a" * 5000 + b".jpg"
        changes.append("a 5,000-character file name")
    declared_type = draw(
        st.sampled_from([photo_type.encode(), b"image/jpeg", b"application/octet-stream", b"text/html"])
    )
    part_headers = b""
    if "long part header" in chosen:
        part_headers = b"X-Note: " + b"n" * draw(st.sampled_from([1000, 100_000])) + b"\r\n"
        changes.append("a long part header")
    parts = [field_part(name, value) for name, value in fields]
    if file_field is not None:
        parts.append(file_part(file_field, filename, declared_type, photo, headers=part_headers))
    if "duplicated photo" in chosen:
        for _ in range(draw(st.integers(1, 3))):
            parts.append(file_part(file_field or b"fileToUpload", b"again.jpg", declared_type, photo))
        changes.append("duplicated photo parts")
    if "part without disposition" in chosen:
        parts.append(b"X-No-Disposition: at all\r\n\r\nvalue")
        changes.append("a part without Content-Disposition")
    if "bad base64" in chosen:
        parts.append(
            field_part(b"encoded", b"!!! not base64 !!!", headers=b"Content-Transfer-Encoding: base64\r\n")
        )
        changes.append("a base64 part that is not base64")
    if draw(st.booleans()):  # the order of parts is the client's
        parts = list(draw(st.permutations(parts)))

    boundary = BOUNDARY.encode()
    body = (
        b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + boundary + b"--\r\n"
    )
    content_type = draw(
        st.sampled_from(
            [f"multipart/form-data; boundary={BOUNDARY}", f'multipart/form-data; boundary="{BOUNDARY}"']
        )
    )
    if draw(st.booleans()):
        body = b"a preamble, which RFC 2046 tells parsers to skip\r\n" + body
    if "charset" in chosen:  # codecs Python has that cannot decode a form, and one it does not have
        charset = draw(
            st.sampled_from(["idna", "utf-16", "rot13", "hex", "undefined", "punycode", "cp037", "x-bogus"])
        )
        content_type += f"; charset={charset}"
        changes.append(f"charset {charset}")
    envelope = draw(st.sampled_from(ENVELOPES)) if "envelope" in chosen else None
    if envelope == "other boundary":
        other = draw(
            st.text(BOUNDARY_CHARACTERS, min_size=1, max_size=69).filter(lambda text: text != BOUNDARY)
        )
        content_type = f"multipart/form-data; boundary={other}"
        changes.append("boundary in the header does not match the body")
    elif envelope == "no final boundary":
        body = body[: -len(boundary) - 6]
        changes.append("no final boundary")
    elif envelope == "no boundary":
        content_type = "multipart/form-data"
        changes.append("multipart without a boundary")
    elif envelope == "LF line ends":
        body = body.replace(b"\r\n", b"\n")
        changes.append("LF line ends")
    elif envelope == "cut short":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
        changes.append("body cut short")
    elif envelope == "urlencoded":
        content_type = "application/x-www-form-urlencoded"
        changes.append("form-urlencoded content type")
    elif envelope == "json":
        content_type = "application/json"
        body = json.dumps({"password": password, "fileToUpload": "x"}).encode()
        changes.append("a JSON body")
    elif envelope == "no content type":
        content_type = ""
        changes.append("no content type")
    elif envelope == "long boundary":
        long_boundary = "b" * draw(st.sampled_from([71, 200, 5000]))
        body = body.replace(boundary, long_boundary.encode())
        content_type = f"multipart/form-data; boundary={long_boundary}"
        changes.append("boundary over 70 characters")
    elif envelope == "empty body":
        body = b""
        changes.append("empty body")

    slot_id = "slot-001"
    if "slot id" in chosen:
        slot_id = draw(st.one_of(st.sampled_from(ODD_SLOT_IDS), odd_text(30)))
        changes.append(f"slot id {slot_id[:20]!r}")
    prefix = draw(st.sampled_from(["/ingest/", "/api/ingest/"]))
    path = prefix + quote(slot_id, safe="") + draw(st.sampled_from(["", "/"]))

    headers: dict[str, str] = {}  # request headers are not ours to refuse: none of this is a change
    size = draw(st.sampled_from([0, 0, 8 * 1024, 64 * 1024]))
    if size:
        headers["X-Junk"] = "j" * size
    if draw(st.integers(0, 4)) == 0:
        headers.update({f"X-Many-{number}": "v" for number in range(300)})
    return HostileRequest(
        path=path,
        body=body,
        content_type=content_type,
        headers=headers,
        chunked=draw(st.booleans()),
        changes=changes,
    )


# --- The rules -------------------------------------------------------------------------------------


def answer_problems(request: HostileRequest, response: BoothResponse) -> list[str]:
    """What is wrong with this answer (empty: nothing). Jobs and files are the caller's to count."""
    if response.status == 200:
        problems = [] if response.headers.get("x-job-id") else ["200 without X-Job-Id"]
        if not response.headers.get("content-type", "").startswith("image/"):
            problems.append(f"200 with {response.headers.get('content-type')!r}")
        return problems
    if request.harmless:
        return [f"the booth's own request was refused with {response.status}: {response.body[:200]!r}"]
    if response.status >= 500:
        return [f"{response.status} for {request.describe()}: {response.body[:200]!r}"]
    if not response.headers.get("content-type", "").startswith("application/json"):
        return [f"{response.status} not as JSON for {request.describe()}: {response.body[:100]!r}"]
    try:
        body = json.loads(response.body)
    except ValueError:
        return [f"{response.status} with a body that is not JSON for {request.describe()}"]
    reason = body.get("failure_reason") if isinstance(body, dict) else None
    if (
        REFUSALS.get(str(reason)) != response.status
        or body.get("status") != "error"
        or not body.get("message")
    ):
        return [f"{response.status} with {body!r} for {request.describe()}"]
    return []
