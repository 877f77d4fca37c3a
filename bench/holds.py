"""N concurrent booth requests held open at once against one web process; prints JSON figures.

Each client opens its own connection and posts the booth's multipart request once, as DSLR Remote Pro
does: headers with ``Expect: 100-continue``, the body after ``100 Continue``. All are in flight
together. Reports status counts, latency and the web process's peak RSS (sampled with psutil).

    python bench/holds.py --port 8765 --photo bench/photo.jpg --n 1000 --pid <web pid>
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import time

import psutil

BOUNDARY = "------------090306000104030805010400"


def body_for(photo: bytes, password: str) -> bytes:
    fields = [("time", str(int(time.time()))), ("user_id", "Acer"), ("id", "CY04N068111304S2L_00000001."),
              ("hash", hashlib.sha1(photo).hexdigest()), ("name", "DESKTOP-K968T3F"), ("model", "Windows"),
              ("version", "3.30.2"), ("password", password)]  # fmt: skip
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields
    ]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="fileToUpload"; filename="IMG_0003.JPG"\r\n'
                 "Content-Type: image/jpeg\r\n\r\n".encode() + photo + b"\r\n")  # fmt: skip
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


async def one(port: int, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    head = (f"POST /ingest/slot-{1 + int.from_bytes(os.urandom(1), 'big') % 15:03d} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n").encode()  # fmt: skip
    try:
        writer.write(head)
        await writer.drain()
        status_line = await reader.readuntil(b"\r\n")
        if b" 100 " in status_line:
            await reader.readuntil(b"\r\n")
            writer.write(body)
            await writer.drain()
            status_line = await reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ")[1])
        headers = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in headers.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
    except (OSError, asyncio.IncompleteReadError):
        status = -1
    finally:
        writer.close()
    return status, (time.perf_counter() - started) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--photo", required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--pid", type=int, default=0)
    options = parser.parse_args()
    body = body_for(open(options.photo, "rb").read(), os.environ.get("INGEST_PASSWORD", "secret123"))
    process = psutil.Process(options.pid) if options.pid else None
    rss_peak = [0]
    threads_peak = [0]

    async def sample() -> None:
        while True:
            if process is not None:
                rss_peak[0] = max(rss_peak[0], process.memory_info().rss)
                threads_peak[0] = max(threads_peak[0], process.num_threads())
            await asyncio.sleep(0.1)

    sampler = asyncio.ensure_future(sample())
    rss_before = process.memory_info().rss if process else 0
    started = time.perf_counter()
    results = await asyncio.gather(*(one(options.port, body) for _ in range(options.n)))
    wall = time.perf_counter() - started
    sampler.cancel()
    codes: dict[str, int] = {}
    for status, _ in results:
        codes[str(status)] = codes.get(str(status), 0) + 1
    latencies = sorted(ms for status, ms in results if status == 200)
    print(json.dumps({
        "requests": options.n,
        "codes": codes,
        "wall_s": round(wall, 2),
        "latency_ok_ms": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "max": round(latencies[-1], 1) if latencies else None,
        },
        "web_rss_mb_before": round(rss_before / 2**20, 1),
        "web_rss_mb_peak": round(rss_peak[0] / 2**20, 1),
        "web_threads_peak": threads_peak[0],
    }))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
