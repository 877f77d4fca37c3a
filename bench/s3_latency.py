"""S3 latency added per job: the same stack with media on the filesystem, then on S3. Prints figures.

A local S3 server (moto in server mode, in this process) stands in for the bucket, so the figures are a
*local moto* figure: loopback round trips to a Python S3 server sharing the machine's cores with the
stack — not AWS, MinIO or Yandex over a network. Add your store's round-trip time per request (below)
to carry them over.

1. Store operations, one at a time, in this process (``media.storage``, the real boto3 client): what a
   job does to the store — the input stored at ingest, read by the worker (for the provider and the
   thumbnail), the result stored and read for the answer, two thumbnails stored, the input deleted —
   with a booth photo (~200 KB) and a DSLR photo (~6.5 MB); medians over repeats.
2. End to end: ``bench/run.py``'s stack (uvicorn + one worker + the fake Gemini, provider delay 0),
   sequential photos through the reference load generator; the booth's overhead (response time minus
   provider delay), filesystem vs S3.

    .venv/bin/python bench/s3_latency.py [--n 100] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from run import Stack, dslr_photo, load  # noqa: E402 — bench/run.py, beside this script

BUCKET = "photochanger-bench"


def moto_environment() -> tuple[object, dict[str, str]]:
    """A moto S3 server on a free port with an empty bucket, and the variables that point at it."""
    # Not conftest's fixture: importing pytest here would switch the settings to their test mode
    # (TESTING: a fast password hasher the stack's web process does not know).
    from media.tests.local_s3 import local_s3_start

    return local_s3_start(BUCKET, "bench-access-key", "bench-secret-key")


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def store_operations(photo: bytes, repeats: int) -> dict[str, float]:
    """Median milliseconds of each store operation a job makes, on the configured store."""
    import io
    import uuid
    from functools import partial

    from media import storage

    def close_after_open(path: str) -> None:
        storage.open_read(path).close()

    timings: dict[str, list[float]] = {}
    for _ in range(repeats + 2):
        job_id = uuid.uuid4()
        input_path = storage.input_path(job_id, "image/jpeg")
        result_path = storage.result_path(job_id, "image/jpeg")
        steps: list[tuple[str, Callable[[], object]]] = [
            ("store input (ingest)", partial(storage.write_new_from, input_path, io.BytesIO(photo))),
            ("stream input (to the provider)", partial(storage.read, input_path)),
            ("open input for the thumbnail", partial(close_after_open, input_path)),
            ("store result", partial(storage.write_new, result_path, photo)),
            ("read result (the answer)", partial(storage.read, result_path)),
            (
                "store a thumbnail",
                partial(storage.write_new, storage.thumbnail_path(job_id, "input"), photo[:20_000]),
            ),
            ("delete input (finalize)", partial(storage.delete, input_path)),
            ("delete result (cleanup)", partial(storage.delete, result_path)),
        ]
        for name, step in steps:
            started = time.perf_counter()
            step()
            timings.setdefault(name, []).append(time.perf_counter() - started)
    # The first two rounds warm up boto3 (client set-up, connections).
    return {name: median_ms(samples[2:]) for name, samples in timings.items()}


def child(store: str, n: int, repeats: int) -> None:
    """One store: its operations in this process, then the stack end to end; one JSON line on stdout."""
    server = None
    stack = Stack(worker_concurrency=256, workers=1)
    if store == "s3":
        server, values = moto_environment()
        stack.env.update(values)
        os.environ.update(values)  # this process's own store (media.storage) too
    figures: dict[str, object] = {"store": store}
    stack.setup_database()  # django.setup() with this environment
    try:
        booth = (BASE_DIR / "bench" / "photo.jpg").read_bytes()
        dslr = dslr_photo(BASE_DIR / "var" / "bench" / "dslr.jpg")
        figures["operations_booth_photo_ms"] = store_operations(booth, repeats)
        figures["operations_dslr_photo_ms"] = store_operations(dslr.read_bytes(), max(3, repeats // 4))
        stack.up()
        for tag, photo, count in (
            ("booth", BASE_DIR / "bench" / "photo.jpg", n),
            ("dslr", dslr, max(10, n // 4)),
        ):
            result = load(
                stack,
                "seq",
                "--photo",
                str(photo),
                "--n",
                str(count),
                "--delay",
                "0",
                "--tag",
                f"s3-{store}-{tag}",
            )
            figures[f"end_to_end_{tag}"] = {key: result.get(key) for key in ("codes", "overhead_ms")}
    finally:
        stack.down()
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
    print(json.dumps(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100, help="sequential booth photos end to end (DSLR: n/4)")
    parser.add_argument(
        "--repeats", type=int, default=20, help="rounds of store operations (DSLR: repeats/4)"
    )
    parser.add_argument("--child", choices=["filesystem", "s3"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child, options.n, options.repeats)
        return
    runs = {}
    for store in ("filesystem", "s3"):
        # A process per store: Django's settings (the store) are read once per process.
        command = [
            sys.executable,
            __file__,
            "--child",
            store,
            "--n",
            str(options.n),
            "--repeats",
            str(options.repeats),
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=BASE_DIR).stdout
        runs[store] = json.loads(output.strip().splitlines()[-1])
    print("S3 latency added per job — LOCAL MOTO SERVER on 127.0.0.1 (not a real bucket over a network)")
    for key, title in (
        ("operations_booth_photo_ms", "booth photo"),
        ("operations_dslr_photo_ms", "DSLR photo"),
    ):
        print(f"\n== store operations, median ms ({title})")
        print(f"  {'operation':40} {'filesystem':>11} {'s3 (moto)':>11}")
        for name, fs_ms in runs["filesystem"][key].items():
            print(f"  {name:40} {fs_ms:>11} {runs['s3'][key][name]:>11}")
    for tag in ("booth", "dslr"):
        print(f"\n== end to end, sequential, provider delay 0 ({tag} photo): booth overhead ms")
        for store in ("filesystem", "s3"):
            figures = runs[store][f"end_to_end_{tag}"]
            print(
                f"  {store:11} codes {json.dumps(figures['codes'])} overhead {json.dumps(figures['overhead_ms'])}"
            )


if __name__ == "__main__":
    main()
