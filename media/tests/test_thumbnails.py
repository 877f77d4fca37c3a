"""Staff previews: small upright JPEGs, made from big photos cheaply; an undecodable image gives none."""

import io
import uuid

import pytest
from PIL import Image

from jobs.tests.booth import make_jpeg, make_png
from media import thumbnails


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_big_photo_becomes_a_jpeg_at_most_320_pixels_on_its_long_side(media_root):
    photo = make_jpeg(4000, 3000)
    path = thumbnails.thumbnail_store_from_bytes(job_id=uuid.uuid4(), kind="result", image=photo)

    assert path.startswith("thumbnails/") and path.endswith(".jpg")
    image = decoded((media_root / path).read_bytes())
    assert (image.format, image.size) == ("JPEG", (320, 240))


def test_a_photo_taken_sideways_is_shown_upright():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    Image.new("RGB", (800, 600), (10, 200, 30)).save(buffer, "JPEG", exif=exif)

    data = thumbnails.thumbnail_jpeg(io.BytesIO(buffer.getvalue()))

    assert data is not None
    assert decoded(data).size == (240, 320)


def test_a_transparent_png_is_shown_on_white():
    data = thumbnails.thumbnail_jpeg(io.BytesIO(make_png(64, 64, transparent_center=True)))

    assert data is not None
    image = decoded(data).convert("RGB")
    assert min(image.getpixel((32, 32))) >= 245, "the transparent middle is white"  # type: ignore[arg-type]
    red, green, blue = image.getpixel((2, 2))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60, "the opaque border keeps its colour"


def test_an_undecodable_image_gives_no_thumbnail_and_leaves_no_file(media_root):
    garbage = b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 10

    assert thumbnails.thumbnail_store_from_bytes(job_id=uuid.uuid4(), kind="result", image=garbage) == ""
    assert (
        thumbnails.thumbnail_store_from_file(job_id=uuid.uuid4(), kind="input", source_path="inputs/none.jpg")
        == ""
    )
    assert not (media_root / "thumbnails").exists() or not any((media_root / "thumbnails").iterdir())
