"""A QR code of a URL stamped onto a corner of an image (segno draws it, Pillow places it).

The code is drawn black on white with its quiet zone (4 modules, as the QR standard asks), so a phone
reads it off a print whatever the photo behind it. Its side is about a fifth of the image's shorter side,
with whole pixels per module (at least 3), a margin from the edges. Blocking (decodes and encodes the
image): the worker calls it in a thread.
"""

from __future__ import annotations

import io

import segno
from PIL import Image, ImageOps

from media.images import sniff_image_type

CORNERS = ("bottom-right", "bottom-left")
QUIET_ZONE_MODULES = 4
# The code with its quiet zone, as a share of the image's shorter side; and its margin from the edges.
SIDE_FRACTION = 0.2
MARGIN_FRACTION = 0.02
MIN_MODULE_PIXELS = 3
# How the stamped image is saved again, by type: JPEG/WebP close to what providers send; the fastest
# settings, since the booth waits for this (bench/qr_stamp.py: PNG at Pillow's default level took
# 0.5 s for a 1024² result and 2.5 s for 2048², level 1 a fraction of that for a somewhat larger file).
SAVE_OPTIONS: dict[str, tuple[str, dict[str, object]]] = {
    "image/jpeg": ("JPEG", {"quality": 92}),
    "image/png": ("PNG", {"compress_level": 1}),
    "image/webp": ("WEBP", {"quality": 92, "method": 0}),
}


class CannotStamp(Exception):
    """The image could not be decoded or saved again here (it is returned unstamped)."""


def qr_symbol(url: str) -> segno.QRCode:
    """The QR code of ``url`` (error correction M at least; segno raises it when space allows)."""
    return segno.make_qr(url, error="m")


def qr_image(url: str, module_pixels: int) -> Image.Image:
    """The QR code of ``url`` as a black-on-white image with its quiet zone, ``module_pixels`` a module."""
    buffer = io.BytesIO()
    qr_symbol(url).save(buffer, kind="png", scale=module_pixels, border=QUIET_ZONE_MODULES)
    buffer.seek(0)
    with Image.open(buffer) as drawn:
        return drawn.convert("RGB")


def stamp_qr(data: bytes, mime_type: str, *, url: str, corner: str) -> tuple[bytes, str]:
    """``data`` with the QR code of ``url`` in ``corner``; returns the new bytes and their MIME type.

    A type Pillow cannot save again here (HEIC) becomes a JPEG. Raises ``CannotStamp`` for an image that
    cannot be decoded or is too small to carry a readable code.
    """
    if corner not in CORNERS:
        raise ValueError(f"unknown corner {corner!r}")
    mime_type = sniff_image_type(data) or mime_type
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise CannotStamp(f"the image cannot be decoded ({error.__class__.__name__})") from error
    symbol = qr_symbol(url)
    modules = int(symbol.symbol_size(scale=1, border=QUIET_ZONE_MODULES)[0])
    shorter = min(image.size)
    module_pixels = max(MIN_MODULE_PIXELS, int(shorter * SIDE_FRACTION) // modules)
    side = modules * module_pixels
    margin = int(shorter * MARGIN_FRACTION)
    if side + margin > shorter:
        raise CannotStamp(f"the image ({image.width}×{image.height}) is too small for a readable code")
    code = qr_image(url, module_pixels)
    top = image.height - side - margin
    left = image.width - side - margin if corner == "bottom-right" else margin
    format_name, options = SAVE_OPTIONS.get(mime_type, SAVE_OPTIONS["image/jpeg"])
    saved_type = mime_type if mime_type in SAVE_OPTIONS else "image/jpeg"
    if format_name == "JPEG" and image.mode not in {"RGB", "L"}:
        image = image.convert("RGB")
    elif image.mode not in {"RGB", "RGBA", "L", "LA"}:
        image = image.convert("RGBA")
    image.paste(code if image.mode in {"RGB", "RGBA"} else code.convert(image.mode), (left, top))
    buffer = io.BytesIO()
    try:
        image.save(buffer, format_name, **options)
    except (OSError, ValueError) as error:
        raise CannotStamp(f"the stamped image cannot be saved ({error.__class__.__name__})") from error
    return buffer.getvalue(), saved_type
