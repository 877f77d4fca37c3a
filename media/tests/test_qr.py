"""The share page's QR code stamped onto an image's corner (media.qr), read back by a real decoder."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from jobs.tests.booth import make_jpeg, make_png
from media.qr import CannotStamp, qr_image, stamp_qr

URL = "https://booth.example.com/s/Q2hlY2sgdGhlIFFSIGNvZGUgb24gaXQh"


def decoded(data: bytes) -> list[tuple[str, tuple[int, int]]]:
    """The QR codes a phone's decoder finds in ``data``: text and the code's top-left corner."""
    with Image.open(io.BytesIO(data)) as image:
        found = zxingcpp.read_barcodes(image.convert("RGB"))
    return [(code.text, (code.position.top_left.x, code.position.top_left.y)) for code in found]


def encode(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("photo", "mime_type"),
    [
        (make_jpeg(1024, 683, noise=True), "image/jpeg"),
        (make_png(800, 600), "image/png"),
        (encode(Image.effect_noise((900, 900), 60).convert("RGB"), "WEBP"), "image/webp"),
    ],
    ids=["jpeg", "png", "webp"],
)
def test_the_stamped_code_decodes_to_the_url_and_the_image_keeps_its_type_and_size(photo, mime_type):
    stamped, stamped_type = stamp_qr(photo, mime_type, url=URL, corner="bottom-right")
    assert stamped_type == mime_type
    with Image.open(io.BytesIO(stamped)) as image, Image.open(io.BytesIO(photo)) as original:
        assert image.size == original.size
        width, height = image.size
    codes = decoded(stamped)
    assert [text for text, _corner in codes] == [URL]
    left, top = codes[0][1]
    assert left > width / 2 and top > height / 2, "in the bottom-right corner"


def test_bottom_left_puts_the_code_in_the_bottom_left_corner():
    photo = make_jpeg(1200, 800, noise=True)
    stamped, _type = stamp_qr(photo, "image/jpeg", url=URL, corner="bottom-left")
    (text, (left, top)), *_rest = decoded(stamped)
    assert text == URL
    assert left < 1200 / 2 and top > 800 / 2


def test_the_code_keeps_a_white_quiet_zone_of_four_modules():
    code = qr_image(URL, module_pixels=3)
    quiet = 4 * 3
    for x in range(code.width):
        for y in list(range(quiet)) + list(range(code.height - quiet, code.height)):
            assert code.getpixel((x, y)) == (255, 255, 255)


def test_an_image_too_small_for_a_readable_code_is_refused_not_spoiled():
    with pytest.raises(CannotStamp):
        stamp_qr(make_png(64, 64), "image/png", url=URL, corner="bottom-right")


def test_bytes_that_are_no_image_are_refused():
    with pytest.raises(CannotStamp):
        stamp_qr(b"not an image at all", "image/jpeg", url=URL, corner="bottom-right")
