"""A booth's overhead while others misbehave; prints JSON figures, asserts nothing.

Two scenarios against a running stack (bench/run.py starts it and calls this script):

- ``passwords``: 16 clients, each from its own loopback address (127.0.0.2 …), post the booth's
  request with a new random wrong password as fast as they can;
- ``slow``: N connections (default 300) send their headers and then the body at 1 byte a second,
  reconnecting when cut off (after the body timeout's 408), like booths on a terrible uplink or an
  attacker.

Meanwhile one booth (127.0.0.1, the right password) posts photos one after another. The booth's
overhead (response time minus the provider delay, which the bench sets to 0) is measured quiet first,
then under the pressure, for ``--seconds`` each.

    python bench/pressure.py passwords --port 8765 --photo bench/photo.jpg --password secret123
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from typing import Any

from holds import BOUNDARY, body_for


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, await reader.readexactly(length)


def request_head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


BOOTH_TIMEOUT_SECONDS = 60  # about what DSLR Remote Pro waits before it prints the original


async def booth(port: int, body: bytes, seconds: float) -> dict[str, Any]:
    """Sequential posts (kept-open connection) for ``seconds``: overhead percentiles, statuses, timeouts."""
    head = request_head("/ingest/slot-001", len(body))
    latencies: list[float] = []
    codes: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        while time.monotonic() < deadline:
            if connection is None:
                connection = await asyncio.open_connection(
                    "127.0.0.1", port, limit=1 << 24, local_addr=("127.0.0.1", 0)
                )
            reader, writer = connection
            started = time.perf_counter()
            try:
                writer.write(head + body)
                await writer.drain()
                status, _data = await asyncio.wait_for(read_response(reader), BOOTH_TIMEOUT_SECONDS)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
                problem = "no answer in 60 s" if isinstance(error, TimeoutError) else "connection lost"
                codes[problem] = codes.get(problem, 0) + 1
                writer.close()
                connection = None
                continue
            codes[str(status)] = codes.get(str(status), 0) + 1
            if status == 200:
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        if connection is not None:
            connection[1].close()
    latencies.sort()
    return {
        "requests": sum(codes.values()),
        "codes": codes,
        "overhead_ms": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "p95": round(latencies[int(len(latencies) * 0.95) - 1], 1) if latencies else None,
        },
    }


PLACEHOLDER = b"P" * 16


def with_new_password(template: bytes) -> bytes:
    """The booth's body with a fresh random 16-character password (cheap: guessers must not eat the CPU)."""
    return template.replace(PLACEHOLDER, secrets.token_hex(8).encode(), 1)


async def guesser(
    port: int, template: bytes, address: str, stop: asyncio.Event, codes: dict[str, int]
) -> None:
    while not stop.is_set():
        body = with_new_password(template)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
        except OSError:
            codes["connect_error"] = codes.get("connect_error", 0) + 1
            await asyncio.sleep(0.05)
            continue
        try:
            while not stop.is_set():
                writer.write(request_head("/ingest/slot-001", len(body)) + body)
                await writer.drain()
                status, _data = await read_response(reader)
                codes[str(status)] = codes.get(str(status), 0) + 1
                body = with_new_password(template)
        except (OSError, asyncio.IncompleteReadError):
            codes["closed"] = codes.get("closed", 0) + 1
        finally:
            writer.close()


async def trickler(
    port: int,
    length: int,
    stop: asyncio.Event,
    codes: dict[str, int],
    answered_after: list[float],
    interval: float = 1.0,
) -> None:
    while not stop.is_set():
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            opened = time.monotonic()
            writer.write(request_head("/ingest/slot-001", length))
            await writer.drain()
            while not stop.is_set():
                writer.write(b"-")
                await writer.drain()
                try:
                    status, _data = await asyncio.wait_for(read_response(reader), timeout=interval)
                except TimeoutError:
                    continue
                codes[str(status)] = codes.get(str(status), 0) + 1
                answered_after.append(time.monotonic() - opened)
                break
        except (OSError, asyncio.IncompleteReadError):
            codes["closed"] = codes.get("closed", 0) + 1
            await asyncio.sleep(0.1)
        finally:
            if writer is not None:
                writer.close()


async def pressure(options: argparse.Namespace) -> None:
    """Run the misbehaving clients until stdin closes; print their status counts (the child's role)."""
    photo = open(options.photo, "rb").read()
    stop = asyncio.Event()
    codes: dict[str, int] = {}
    answered_after: list[float] = []  # slow connections: seconds from connecting to their answer
    if options.scenario == "passwords":
        template = body_for(photo, PLACEHOLDER.decode())
        tasks = [
            asyncio.ensure_future(guesser(options.port, template, f"127.0.0.{2 + n}", stop, codes))
            for n in range(options.clients)
        ]
    else:
        length = len(body_for(photo, options.password))
        tasks = [
            asyncio.ensure_future(
                trickler(options.port, length, stop, codes, answered_after, options.interval)
            )
            for _ in range(options.clients)
        ]
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    answered = sorted(answered_after)
    timing = {"min": round(answered[0], 1), "max": round(answered[-1], 1)} if answered else None
    print(json.dumps({"codes": codes, "answered_after_seconds": timing}), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["passwords", "slow"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--photo", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=0, help="guessers (16) or slow connections (300)")
    parser.add_argument("--interval", type=float, default=1.0, help="slow: seconds between their bytes")
    parser.add_argument("--pressure-only", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    options.clients = options.clients or (16 if options.scenario == "passwords" else 300)
    if options.pressure_only:
        await pressure(options)
        return
    body = body_for(open(options.photo, "rb").read(), options.password)

    quiet = await booth(options.port, body, options.seconds)
    # The misbehaving clients run in a process of their own: the booth's figures are the server's.
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *sys.argv[1:], "--pressure-only",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(2)  # the pressure is on before the booth measures again
    loaded = await booth(options.port, body, options.seconds)
    assert child.stdin is not None
    child.stdin.close()
    out, _ = await child.communicate()
    pressure_figures = json.loads(out.decode() or "{}")
    quiet_p50 = quiet["overhead_ms"]["p50"]
    loaded_p50 = loaded["overhead_ms"]["p50"]
    print(json.dumps({
        "scenario": options.scenario,
        "pressure_clients": options.clients,
        "booth_quiet": quiet,
        "booth_under_pressure": loaded,
        "ratio_p50": round(loaded_p50 / quiet_p50, 2) if quiet_p50 and loaded_p50 else None,
        "pressure_codes": pressure_figures.get("codes"),
        "pressure_answered_after_seconds": pressure_figures.get("answered_after_seconds"),
        "booth_5xx": sum(n for code, n in loaded["codes"].items() if code.startswith("5")),
    }))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
