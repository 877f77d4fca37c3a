"""Judging uploads by their bytes (media.images): a photo is accepted only when its image data is
complete and decodable, so a truncated upload never becomes a job."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from jobs.tests.booth import make_dslr_jpeg, make_jpeg, make_png
from media.images import HEIC, JPEG, PNG, WEBP, UnreadableImage, image_data_check, sniff_image_type


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def heif_file(mdat_size: int = 4000) -> bytes:
    """The shape of a HEIC file: an ftyp box, a meta box and the mdat box holding the picture."""

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    return (
        box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic")
        + box(b"meta", b"\x00" * 120)
        + box(b"mdat", b"\x5a" * mdat_size)
    )


def check(data: bytes, mime_type: str) -> None:
    image_data_check(io.BytesIO(data), mime_type)


def test_pillow_is_not_told_to_accept_truncated_images_anywhere():
    import jobs.ingest  # noqa: F401 — everything the ingest path imports
    import media.thumbnails  # noqa: F401
    import providers.adapters.local  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("data", "mime_type"),
    [
        (make_jpeg(), JPEG),
        (encoded(Image.effect_noise((300, 200), 40).convert("RGB"), "JPEG", progressive=True), JPEG),
        (encoded(Image.new("L", (300, 200), 90), "JPEG"), JPEG),
        (encoded(Image.new("CMYK", (300, 200), (1, 2, 3, 4)), "JPEG"), JPEG),
        (make_png(), PNG),
        (encoded(Image.effect_noise((301, 199), 40).convert("RGB"), "PNG", optimize=True), PNG),
        (encoded(Image.effect_noise((301, 199), 40).convert("RGBA"), "PNG", interlace=1), PNG),
        (encoded(Image.new("P", (33, 17), 3), "PNG", bits=4), PNG),
        (encoded(Image.new("I;16", (40, 30), 1000), "PNG"), PNG),
        (encoded(Image.new("1", (41, 9), 1), "PNG"), PNG),
        (encoded(Image.new("RGB", (300, 200), (10, 200, 30)), "WEBP"), WEBP),
        (encoded(Image.new("RGBA", (300, 200), (10, 200, 30, 100)), "WEBP", lossless=True), WEBP),
        (heif_file(), HEIC),
    ],
    ids=[
        "baseline JPEG", "progressive JPEG", "greyscale JPEG", "CMYK JPEG", "RGBA PNG", "optimized RGB PNG",
        "interlaced PNG", "4-bit palette PNG", "16-bit PNG", "1-bit PNG", "lossy WebP", "lossless WebP", "HEIC",
    ],
)  # fmt: skip
def test_a_whole_image_of_every_accepted_kind_passes(data, mime_type):
    assert sniff_image_type(data[:64]) == mime_type
    check(data, mime_type)


def test_a_dslr_photo_passes_and_the_stream_is_left_at_its_start():
    stream = io.BytesIO(make_dslr_jpeg())
    stream.seek(12345)
    image_data_check(stream, JPEG)
    assert stream.tell() == 0


@pytest.mark.parametrize("kept", [0.1, 0.5, 0.9, 0.999], ids=["10 %", "half", "90 %", "all but the end"])
def test_a_truncated_jpeg_is_refused(kept):
    photo = make_jpeg(800, 600, noise=True)
    with pytest.raises(UnreadableImage):
        check(photo[: int(len(photo) * kept)], JPEG)


def test_a_jpeg_missing_only_its_end_marker_is_refused():
    photo = make_jpeg(800, 600, noise=True)
    assert photo.endswith(b"\xff\xd9")
    with pytest.raises(UnreadableImage):
        check(photo[:-2], JPEG)


def test_a_jpeg_with_bytes_after_its_end_marker_passes():
    check(make_jpeg() + b"trailer some cameras write", JPEG)


def test_a_jpeg_whose_header_promises_a_table_it_never_has_is_refused():
    photo = make_jpeg()
    start_of_scan = photo.index(b"\xff\xda")
    with pytest.raises(UnreadableImage):
        check(photo[:start_of_scan] + b"\xff\xd9", JPEG)


@pytest.mark.parametrize("kept", [0.2, 0.6, 0.99])
def test_a_truncated_png_is_refused(kept):
    photo = encoded(Image.effect_noise((300, 200), 40).convert("RGB"), "PNG")
    with pytest.raises(UnreadableImage):
        check(photo[: int(len(photo) * kept)], PNG)


def test_a_png_with_a_damaged_byte_is_refused_by_its_chunk_checksum():
    photo = bytearray(encoded(Image.effect_noise((300, 200), 40).convert("RGB"), "PNG"))
    photo[len(photo) // 2] ^= 0x40
    with pytest.raises(UnreadableImage, match="CRC"):
        check(bytes(photo), PNG)


def png_with_pixels(width: int, height: int, rows: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def test_a_png_whose_image_data_is_shorter_than_its_header_says_is_refused_despite_good_checksums():
    full_rows = b"".join(b"\x00" + b"\x80" * 30 for _ in range(10))  # 10 rows of 10 RGB pixels
    check(png_with_pixels(10, 10, full_rows), PNG)
    with pytest.raises(UnreadableImage, match="header needs"):
        check(png_with_pixels(10, 10, full_rows[:-31]), PNG)


def test_a_png_whose_compressed_stream_stops_early_is_refused_despite_good_checksums():
    rows = b"".join(b"\x00" + bytes(range(30)) for _ in range(10))
    cut = zlib.compress(rows)[:-6]
    header = struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    photo = (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", cut) + png_chunk(b"IEND", b"")
    )
    with pytest.raises(UnreadableImage, match="ends early"):
        check(photo, PNG)


def test_a_png_made_of_endless_tiny_chunks_is_refused_quickly():
    header = struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    tiny = png_chunk(b"tEXt", b"")
    photo = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + tiny * 60_000
    with pytest.raises(UnreadableImage, match="too many chunks"):
        check(photo, PNG)


@pytest.mark.parametrize("kept", [0.3, 0.95])
def test_a_truncated_webp_is_refused(kept):
    photo = encoded(Image.effect_noise((300, 200), 40).convert("RGB"), "WEBP")
    with pytest.raises(UnreadableImage):
        check(photo[: int(len(photo) * kept)], WEBP)


@pytest.mark.parametrize("kept", [0.3, 0.95])
def test_a_truncated_heic_is_refused(kept):
    photo = heif_file()
    with pytest.raises(UnreadableImage):
        check(photo[: int(len(photo) * kept)], HEIC)


def pillow_can(data: bytes, *, decode: bool) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if decode:
                opened.load()
    except Exception:
        return False
    return True


def test_lossy_webps_whose_picture_is_damaged_behind_a_good_header_are_refused():
    photo = encoded(Image.effect_noise((64, 48), 50).convert("RGB"), "WEBP")
    damaged_behind_good_headers = 0
    for position in range(20, len(photo)):  # every byte after the RIFF/WEBP/VP8 chunk heads, zeroed
        damaged = photo[:position] + b"\x00" + photo[position + 1 :]
        if pillow_can(damaged, decode=False) and not pillow_can(damaged, decode=True):
            damaged_behind_good_headers += 1
            with pytest.raises(UnreadableImage):
                check(damaged, WEBP)
    assert damaged_behind_good_headers > 0, "some damage opens fine and only fails when decoded"


def test_a_heif_file_without_a_meta_box_is_refused():
    photo = heif_file().replace(b"meta", b"free")
    with pytest.raises(UnreadableImage, match="meta"):
        check(photo, HEIC)
