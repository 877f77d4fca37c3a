"""The local provider: classic booth effects with Pillow, offline (no network, no key).

Operations: ``grayscale``, ``sepia``, ``frame`` (overlay a bound PNG frame with transparency), and
``resize`` (fit within ``max_side``). Settings: ``output_format`` (``jpeg``/``png``), ``quality``
(JPEG, 1–95), ``max_side`` (``resize``, and an optional cap for every operation).
"""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from providers.base import Provider, ProviderError, ProviderImage, ProviderRequest, ProviderResult

OUTPUT_FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}
SEPIA_TONE = ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131))


# Photos decoded at once per worker process. A 20-megapixel photo is ~60 MB decoded: with a small
# fixed pool, a hundred local jobs wait their turn instead of holding a hundred photos in memory.
RENDER_THREADS = 2
_render_executor: ThreadPoolExecutor | None = None


def _renderer() -> ThreadPoolExecutor:
    global _render_executor
    if _render_executor is None:
        _render_executor = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="local-render")
    return _render_executor


class LocalProvider(Provider):
    kind = "local"
    results_are_trusted = True  # made by Pillow right here
    default_operation = "sepia"

    async def process(self, request: ProviderRequest, client: httpx.AsyncClient) -> ProviderResult:
        request.attempts = 1
        # Reading, decoding and encoding all happen on the render pool, never on the event loop.
        image = await asyncio.get_running_loop().run_in_executor(_renderer(), render, request)
        return ProviderResult(image=image, attempts=1)


def render(request: ProviderRequest) -> ProviderImage:
    """The effect applied to the stored photo (blocking: reads the files and runs Pillow)."""
    settings = request.settings
    try:
        with request.photo.open() as handle, Image.open(handle) as opened:
            photo = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ProviderError("the photo cannot be decoded", retryable=False) from error

    max_side = settings.get("max_side")
    if max_side:
        photo.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)

    if request.operation == "grayscale":
        photo = ImageOps.grayscale(photo).convert("RGB")
    elif request.operation == "sepia":
        photo = _sepia(photo)
    elif request.operation == "frame":
        photo = _overlay_frame(photo, request)
    elif request.operation != "resize":
        raise ProviderError(f"unknown local operation {request.operation!r}", retryable=False)

    pil_format, mime_type = OUTPUT_FORMATS[settings.get("output_format", "jpeg")]
    buffer = io.BytesIO()
    if pil_format == "JPEG":
        photo.save(buffer, "JPEG", quality=int(settings.get("quality", 90)), optimize=False)
    else:
        photo.save(buffer, "PNG", compress_level=3)
    return ProviderImage(data=buffer.getvalue(), mime_type=mime_type)


def _sepia(photo: Image.Image) -> Image.Image:
    matrix = tuple(value for row in SEPIA_TONE for value in (*row, 0.0))
    return photo.convert("RGB", matrix)


def _overlay_frame(photo: Image.Image, request: ProviderRequest) -> Image.Image:
    frames = [template for template in request.templates if template.role == "frame"]
    if not frames:
        raise ProviderError("no frame template is bound to this slot", retryable=False)
    try:
        with frames[0].image.open() as handle, Image.open(handle) as opened:
            frame = opened.convert("RGBA").resize(photo.size, Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError) as error:
        raise ProviderError("the frame template cannot be decoded", retryable=False) from error
    composed = photo.convert("RGBA")
    composed.alpha_composite(frame)
    return composed.convert("RGB")
