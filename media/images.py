"""Image sniffing by content: the client's Content-Type and file name are never trusted.

Three steps, cheapest first, all on the bytes: the type from the magic bytes (``sniff_image_type``), the
pixel size from the header alone (``pixel_dimensions``), then whether the image data is complete and
decodable (``image_data_check``), so a truncated upload is refused at ingest rather than sent to a
provider.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib
from typing import Any

from PIL import Image

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
    """The bytes start like an accepted image but cannot be read: damaged, incomplete or not an image."""


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
            except Exception as error:  # hostile bytes make Pillow's parsers raise all sorts
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


def image_data_check(stream: Any, mime_type: str) -> None:
    """Raise ``UnreadableImage`` unless the image data is complete and decodable; ``stream`` left at its start.

    Call it after ``pixel_dimensions`` accepted the size (nothing here is bounded by pixels). What each
    format costs and proves (a 6.5 MB, 20-megapixel DSLR JPEG: about 40 ms of one core, 1 MB of memory):

    - JPEG: decoded at 1/8 scale (Pillow's ``draft``), which still reads every entropy-coded segment to
      the end: a truncated file or a broken stream fails; a few flipped bits inside the data may decode
      as odd pixels, as in any JPEG decoder;
    - PNG: every chunk's CRC up to ``IEND``, and the ``IDAT`` zlib stream inflated (and thrown away, a
      megabyte at a time) to its end, with exactly the bytes the header's rows need;
    - WebP: the container's chunks complete, then decoded in full (libwebp has no reduced-scale
      decoding in Pillow, and a damaged lossy stream often passes its header): one WebP at a time per
      process, so at most one decoded picture (4 bytes a pixel, ≤ ``INGEST_MAX_PIXELS``) is held;
    - HEIC/HEIF: the file-level boxes are complete, the first is ``ftyp`` and a ``meta`` box is there
      (nothing here decodes HEVC: the picture itself is the provider's to read).
    """
    stream.seek(0)
    try:
        if mime_type == JPEG:
            _jpeg_check(stream)
        elif mime_type == PNG:
            _png_check(stream)
        elif mime_type == WEBP:
            _webp_check(stream)
            with _webp_decoding:
                _decode_in_full(stream)
        elif mime_type in (HEIC, HEIF):
            _iso_boxes_check(stream)
    except UnreadableImage:
        raise
    except Exception as error:  # hostile bytes make decoders raise all sorts
        raise UnreadableImage(str(error)) from error
    finally:
        stream.seek(0)


_webp_decoding = threading.Lock()


def _decode_in_full(stream: Any) -> None:
    stream.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(stream) as image:
            image.load()


def _jpeg_check(stream: Any) -> None:
    # Pillow refuses a truncated file unless ImageFile.LOAD_TRUNCATED_IMAGES is set, which nothing here
    # does (a test keeps it that way).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(stream) as image:
            image.draft(None, (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()


# PNG colour types → samples per pixel (grey, -, RGB, palette, grey+alpha, -, RGBA).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (x start, y start, x step, y step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_PIECE_BYTES = 1024 * 1024
_READ_BYTES = 256 * 1024
# Real files have a handful of boxes and chunks (a 20 MB PNG: a few thousand IDAT chunks); a file made
# of millions of tiny ones would only cost CPU time.
_MAX_PNG_CHUNKS = 50_000
_MAX_WEBP_CHUNKS = 10_000
_MAX_HEIF_BOXES = 1_000


def _png_check(stream: Any) -> None:
    stream.seek(8)
    inflater = zlib.decompressobj()
    inflated = 0
    expected: int | None = None
    for _chunk in range(_MAX_PNG_CHUNKS):
        head = stream.read(8)
        if len(head) < 8:
            raise UnreadableImage("the PNG ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        crc = zlib.crc32(kind)
        remaining = length
        while remaining:
            piece = stream.read(min(remaining, _READ_BYTES))
            if not piece:
                raise UnreadableImage(f"the PNG ends inside its {kind!r} chunk")
            remaining -= len(piece)
            crc = zlib.crc32(piece, crc)
            if kind == b"IHDR" and expected is None:
                expected = _png_raw_size(piece)
            elif kind == b"IDAT":
                inflated += _inflate_discarding(inflater, piece)
        stored = stream.read(4)
        if len(stored) < 4 or struct.unpack(">I", stored)[0] != crc:
            raise UnreadableImage(f"the PNG's {kind!r} chunk is damaged (CRC)")
        if kind == b"IEND":
            break
    else:
        raise UnreadableImage("the PNG has far too many chunks")
    if not inflater.eof:
        raise UnreadableImage("the PNG's image data ends early")
    if expected is not None and inflated != expected:
        raise UnreadableImage(f"the PNG's image data has {inflated} bytes, its header needs {expected}")


def _inflate_discarding(inflater: Any, data: bytes) -> int:
    if inflater.eof:
        return 0  # bytes after the end of the zlib stream: ignored, as decoders do
    produced = len(inflater.decompress(data, _INFLATE_PIECE_BYTES))
    while inflater.unconsumed_tail and not inflater.eof:
        produced += len(inflater.decompress(inflater.unconsumed_tail, _INFLATE_PIECE_BYTES))
    return produced


def _png_raw_size(ihdr: bytes) -> int | None:
    """Bytes the IDAT stream must inflate to (each row: a filter byte and its samples); None if odd."""
    if len(ihdr) < 13:
        return None
    width, height, bit_depth, colour_type, _compression, _filter, interlace = struct.unpack(
        ">IIBBBBB", ihdr[:13]
    )
    samples = _PNG_SAMPLES.get(colour_type)
    if samples is None:
        return None

    def rows(columns: int, count: int) -> int:
        return 0 if columns == 0 or count == 0 else count * (1 + (columns * samples * bit_depth + 7) // 8)

    if interlace == 0:
        return rows(width, height)
    return sum(
        rows(
            (width - x0 + dx - 1) // dx if width > x0 else 0,
            (height - y0 + dy - 1) // dy if height > y0 else 0,
        )
        for x0, y0, dx, dy in _ADAM7
    )


def _webp_check(stream: Any) -> None:
    head = stream.read(12)
    declared = struct.unpack("<I", head[4:8])[0] + 8
    position = 12
    for _chunk in range(_MAX_WEBP_CHUNKS):
        if position >= declared:
            break
        stream.seek(position)
        chunk = stream.read(8)
        if len(chunk) < 8:
            raise UnreadableImage("the WebP file ends early")
        size = struct.unpack("<I", chunk[4:8])[0]
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    else:
        raise UnreadableImage("the WebP file has far too many chunks")
    stream.seek(0, 2)
    if position != declared or stream.tell() < declared:
        raise UnreadableImage("the WebP file is shorter than its header says")


def _iso_boxes_check(stream: Any) -> None:
    stream.seek(0, 2)
    end = stream.tell()
    position = 0
    kinds: list[bytes] = []
    for _box in range(_MAX_HEIF_BOXES):
        if position >= end:
            break
        stream.seek(position)
        head = stream.read(16)
        if len(head) < 8:
            raise UnreadableImage("the HEIF file ends inside a box header")
        size = struct.unpack(">I", head[:4])[0]
        kinds.append(head[4:8])
        if size == 1:
            if len(head) < 16:
                raise UnreadableImage("the HEIF file ends inside a box header")
            size = struct.unpack(">Q", head[8:16])[0]
        elif size == 0:
            size = end - position  # the last box runs to the end of the file
        if size < 8:
            raise UnreadableImage("the HEIF file has a box of an impossible size")
        position += size
    else:
        raise UnreadableImage("the HEIF file has far too many boxes")
    if position != end:
        raise UnreadableImage("the HEIF file ends inside a box")
    if kinds[:1] != [b"ftyp"] or b"meta" not in kinds:
        raise UnreadableImage("the HEIF file has no ftyp box first or no meta box")


# Results must be something a booth can print: decoded by Pillow, so never HEIC.
RESULT_TYPES = (JPEG, PNG, WEBP)


def decoded_image_type(data: bytes, *, max_pixels: int) -> str:
    """The MIME type of ``data`` once its image data has been read to the end: a provider's result before
    it is stored.

    Raises ``UnreadableImage`` for anything that is not a complete JPEG, PNG or WebP (truncated, damaged,
    not an image at all) and ``FarTooManyPixels`` above ``max_pixels`` (judged from the header, before
    anything is decoded). The data is checked as a booth's photo is (``image_data_check``).
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
    image_data_check(stream, mime_type)
    return mime_type
