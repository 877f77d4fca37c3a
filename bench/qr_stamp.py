"""What stamping the share page's QR code onto a result costs the booth (issue 12). Prints figures;
asserts nothing.

The worker stamps the code (``media.qr.stamp_qr``: decode, paste, encode again in the same type) after
the provider's answer and before the finalize, so this time is added to the booth's wait when a slot's
``share_qr`` is on. Measured on one thread (the worker runs it in a thread, off its event loop) for the
sizes providers return: Gemini/OpenAI 1024², 2048² (Gemini 3 Pro 2K), and a DSLR-size JPEG (the local
provider returns the photo's own size).

    .venv/bin/python bench/qr_stamp.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")

from media.qr import stamp_qr

URL = "https://booth.example.com/s/Q2hlY2sgdGhlIFFSIGNvZGUgb24gaXQh"


def sample(width: int, height: int, kind: str) -> bytes:
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width // 4, height // 4), 50).resize((width, height))
    image = Image.merge("RGB", [gradient, noise, gradient.rotate(180)])
    buffer = io.BytesIO()
    image.save(buffer, kind, **({"quality": 92} if kind in {"JPEG", "WEBP"} else {}))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    cases = [
        ("1024×1024 PNG (Gemini 2.5)", 1024, 1024, "PNG", "image/png"),
        ("1024×1024 JPEG (GPT Image)", 1024, 1024, "JPEG", "image/jpeg"),
        ("2048×2048 PNG (Gemini 3 Pro 2K)", 2048, 2048, "PNG", "image/png"),
        ("1536×1024 WebP", 1536, 1024, "WEBP", "image/webp"),
        ("5472×3648 JPEG (DSLR, local provider)", 5472, 3648, "JPEG", "image/jpeg"),
    ]
    print(f"{'image':40} {'bytes in':>10} {'bytes out':>10} {'median ms':>10} {'max ms':>8}")
    for name, width, height, kind, mime_type in cases:
        data = sample(width, height, kind)
        times = []
        for _ in range(arguments.repeat):
            started = time.perf_counter()
            stamped, _type = stamp_qr(data, mime_type, url=URL, corner="bottom-right")
            times.append((time.perf_counter() - started) * 1000)
        print(
            f"{name:40} {len(data):>10,} {len(stamped):>10,} {statistics.median(times):>10.0f} {max(times):>8.0f}"
        )


if __name__ == "__main__":
    main()
