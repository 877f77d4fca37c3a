"""Small JPEG previews of job photos for staff pages (the job page, the jobs list, the slot gallery).

Made once by the worker (``jobs.worker``), in a low-priority thread: the input's right after the claim,
the result's right after the finalize (the booth never waits for one). A big JPEG is decoded at a reduced scale (Pillow's ``draft``), so a 20-megapixel photo
costs a fraction of a full decode. An image that cannot be made into a thumbnail (undecodable, a format
Pillow cannot read, far too many pixels) gives no thumbnail, never an error: the job goes on.
"""

from __future__ import annotations

import io
import logging
import uuid
import warnings
from typing import BinaryIO

from PIL import Image, ImageOps

from media import storage

logger = logging.getLogger(__name__)

# The long side of a thumbnail, in pixels.
THUMBNAIL_MAX_SIDE = 320
THUMBNAIL_QUALITY = 80
THUMBNAIL_MIME_TYPE = "image/jpeg"
INPUT = "input"
RESULT = "result"
KINDS = (INPUT, RESULT)


def thumbnail_jpeg(source: BinaryIO) -> bytes | None:
    """A JPEG of at most ``THUMBNAIL_MAX_SIDE`` pixels on its long side, upright; None if undecodable."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its pixel limit and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                width, height = opened.size
                scale = THUMBNAIL_MAX_SIDE / max(width, height, 1)
                if opened.format == "JPEG" and scale < 1:
                    # Decode at the smallest scale (1/2 … 1/8) still at least the thumbnail's size: a
                    # 20-megapixel photo decodes at 1/8, most of the saving.
                    opened.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
                image = ImageOps.exif_transpose(opened)
                image.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE), Image.Resampling.LANCZOS)
                image = _on_white(image)
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
                return buffer.getvalue()
    except Exception as error:  # any decoding problem: no thumbnail, never a failed job
        logger.info("no thumbnail: %s: %s", error.__class__.__name__, error)
        return None


def _on_white(image: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent parts (a PNG frame, a cut-out) shown on white rather than black."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def thumbnail_store_from_file(*, job_id: uuid.UUID, kind: str, source_path: str) -> str:
    """Make the thumbnail of the stored file ``source_path``; its name in the media store, or "" if none.

    Blocking (reads, decodes and writes files): call it in a thread.
    """
    try:
        with storage.open_read(source_path) as source:
            data = thumbnail_jpeg(source)
    except OSError as error:
        logger.info("no %s thumbnail for job %s: %s", kind, job_id, error.__class__.__name__)
        return ""
    return _store(job_id=job_id, kind=kind, data=data)


def thumbnail_store_from_bytes(*, job_id: uuid.UUID, kind: str, image: bytes) -> str:
    """Like ``thumbnail_store_from_file`` for an image held in memory (the provider's result)."""
    return _store(job_id=job_id, kind=kind, data=thumbnail_jpeg(io.BytesIO(image)))


def _store(*, job_id: uuid.UUID, kind: str, data: bytes | None) -> str:
    if data is None:
        return ""
    path = storage.thumbnail_path(job_id, kind)
    try:
        storage.write_new(path, data)
    except OSError as error:
        logger.warning("thumbnail of job %s not written: %s", job_id, error)
        return ""
    return path
