"""Image sniffing by content: the client's Content-Type and file name are never trusted."""

from __future__ import annotations

import io
import struct
import warnings
from typing import Any

from PIL import Image, UnidentifiedImageError

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
HEIC = "image/heic"
HEIF = "image/heif"

EXTENSIONS = {JPEG: "jpg", PNG: "png", WEBP: "webp", HEIC: "heic", HEIF: "heif"}

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_BRANDS = {b"mif1", b"msf1"}


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of an accepted image format judged by its magic bytes, or None."""
    if len(data) >= 3 and data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEIC_BRANDS:
            return HEIC
        if brand in _HEIF_BRANDS:
            return HEIF
    return None


def extension_for(mime_type: str) -> str:
    return EXTENSIONS.get(mime_type, "bin")


# A HEIF image's pixel size lives in its 'ispe' property boxes, near the start of the file.
_HEIF_HEADER_SCAN_BYTES = 512 * 1024


class UnreadableImage(Exception):
    """The bytes start like an accepted image but its header cannot be read (damaged or not an image)."""


class FarTooManyPixels(Exception):
    """The header declares more pixels than Pillow agrees to even describe (a decompression bomb)."""


def pixel_dimensions(stream: Any, mime_type: str) -> tuple[int, int] | None:
    """Width and height from the image's header alone (nothing is decoded); None if the format hides them.

    Raises ``UnreadableImage`` when the header is damaged, ``FarTooManyPixels`` above twice Pillow's own
    limit (``Image.MAX_IMAGE_PIXELS``). ``stream`` is left at its start.
    """
    stream.seek(0)
    try:
        if mime_type in (HEIC, HEIF):
            return _heif_dimensions(stream.read(_HEIF_HEADER_SCAN_BYTES))
        with warnings.catch_warnings():
            # Pillow warns (or refuses) above its own pixel limit; the caller applies ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(stream) as image:
                    return int(image.width), int(image.height)
            except Image.DecompressionBombError as error:
                raise FarTooManyPixels(str(error)) from error
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
                raise UnreadableImage(str(error)) from error
    finally:
        stream.seek(0)


def _heif_dimensions(head: bytes) -> tuple[int, int] | None:
    largest: tuple[int, int] | None = None
    position = head.find(b"ispe")
    while position != -1 and position + 16 <= len(head):
        # 'ispe' box payload: version/flags (4 bytes), image_width (4), image_height (4), big-endian.
        width, height = struct.unpack(">II", head[position + 8 : position + 16])
        if largest is None or width * height > largest[0] * largest[1]:
            largest = (width, height)
        position = head.find(b"ispe", position + 4)
    return largest


# Results must be something a booth can print: decoded by Pillow, so never HEIC.
RESULT_TYPES = (JPEG, PNG, WEBP)


def decoded_image_type(data: bytes, *, max_pixels: int) -> str:
    """The MIME type of ``data`` once it has been decoded whole: a provider's result before it is stored.

    Raises ``UnreadableImage`` for anything that is not a complete JPEG, PNG or WebP (truncated, damaged,
    not an image at all) and ``FarTooManyPixels`` above ``max_pixels`` (judged from the header, before
    decoding). A JPEG is decoded at 1/8 scale: every byte is still read, at a fraction of the cost.
    """
    mime_type = sniff_image_type(data[:64])
    if mime_type not in RESULT_TYPES:
        raise UnreadableImage("not a JPEG, PNG or WebP image")
    stream = io.BytesIO(data)
    dimensions = pixel_dimensions(stream, mime_type)
    assert dimensions is not None  # always known for these formats
    width, height = dimensions
    if width * height > max_pixels:
        raise FarTooManyPixels(f"{width}×{height} pixels")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                if image.format == "JPEG":
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise UnreadableImage(str(error)[:200]) from error
    return mime_type
