"""A provider's result is decoded whole before it is stored: only complete JPEG, PNG or WebP images pass."""

from __future__ import annotations

import pytest

from jobs.tests.booth import make_jpeg, make_png, make_png_bomb
from media.images import FarTooManyPixels, UnreadableImage, decoded_image_type
from providers.tests.fakes.gemini import BAD_IMAGES
from providers.tests.fakes.openai import WEBP_BYTES

MAX_PIXELS = 50_000_000


@pytest.mark.parametrize(
    ("data", "mime_type"),
    [(make_jpeg(noise=True), "image/jpeg"), (make_png(), "image/png"), (WEBP_BYTES, "image/webp")],
    ids=["jpeg", "png", "webp"],
)
def test_a_complete_image_passes_with_its_type(data, mime_type):
    assert decoded_image_type(data, max_pixels=MAX_PIXELS) == mime_type


def test_a_jpeg_cut_short_is_refused_although_its_header_reads():
    photo = make_jpeg(noise=True)
    with pytest.raises(UnreadableImage, match="truncated"):
        decoded_image_type(photo[: len(photo) // 2], max_pixels=MAX_PIXELS)


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_a_truncated_fake_or_garbage_image_is_refused(name):
    with pytest.raises(UnreadableImage):
        decoded_image_type(BAD_IMAGES[name], max_pixels=MAX_PIXELS)


def test_a_webp_cut_short_is_refused():
    with pytest.raises(UnreadableImage):
        decoded_image_type(WEBP_BYTES[: len(WEBP_BYTES) // 2], max_pixels=MAX_PIXELS)


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding():
    with pytest.raises(FarTooManyPixels):
        decoded_image_type(make_png_bomb(), max_pixels=MAX_PIXELS)
