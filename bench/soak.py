"""Soak (issue 10): 15 booths for ``--minutes`` against a slow, sometimes failing provider. Prints figures.

Brings up what ``scripts/run`` starts (``photochanger.launcher``: uvicorn and ``run_worker`` with their
default options, so worker concurrency 256) with the caps a new install gets (gemini 64, openai 32,
turbotext 32), the sync window's default 48 s and the embedded PostgreSQL under ``var/soak`` —
``--web N`` uvicorn processes on ports of their own (the booths split across them, as a proxy would) and
``--workers M`` ``run_worker`` processes, each with its own ``application_name``. The provider is the fake
Gemini (``providers.tests.fakes.gemini``, a real HTTP server speaking Gemini's wire format) in a process
of its own, made slow and unreliable here: every call waits a delay drawn uniformly from 1–15 s and 2 % of
calls (``--failure-rate``) then answer ``503 UNAVAILABLE`` ("The model is overloaded"), which the worker
treats as Gemini's real 503: retryable, retried after a 0.25–0.5 s backoff while the deadline allows.

Each booth (one per slot) posts the booth's exact request (``jobs.tests.booth``: multipart fields,
``Expect: 100-continue``), waits for the answer, then sleeps so that its posts start at most every 2 s.
The fake writes one line per call (slot, start, drawn delay, answer); a booth's overhead is its latency
minus the delays of the calls made for its job (calls of its slot that started while it waited: a booth
has one job at a time). RSS of each process and the PostgreSQL connections by ``application_name`` are
sampled every 10 s. At the end every job row of the run must be final and match a booth's answer.

    .venv/bin/python bench/soak.py [--minutes 10] [--web 1] [--workers 1] [--dslr]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import io
import json
import os
import random
import socket
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from run import PASSWORD, Stack, dslr_photo  # noqa: E402

from providers.tests.fakes.gemini import FakeGemini  # noqa: E402

DATA_DIR = BASE_DIR / "var" / "soak"
BOOTHS = 15
POST_EVERY_SECONDS = 2.0
SAMPLE_EVERY_SECONDS = 10.0
# The booth's own socket timeout: longer than the sync window (48 s) so the service's 504 is what ends a wait.
BOOTH_TIMEOUT_SECONDS = 70.0
PROMPT_PREFIX = "soak-"  # each slot's prompt names the slot, so the fake knows whose call it serves


# ----------------------------------------------------------------------------- the provider


def free_port() -> int:
    # Not conftest.free_port: importing conftest imports pytest, and the settings then take this for a
    # test run (MD5 password hashes the service's processes would not accept).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_call: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("soak_call")


class SoakGemini(FakeGemini):
    """The fake Gemini with a random delay and random 503s per call, recording each call to a JSONL file."""

    def __init__(
        self, *, record: Path, failure_rate: float, delay_range: tuple[float, float], seed: int, **kwargs: Any
    ) -> None:
        super().__init__(inspect=False, **kwargs)
        self.record = record.open("a", buffering=1)
        self.failure_rate = failure_rate
        self.delay_range = delay_range
        self.random = random.Random(seed)

    async def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
    ) -> Any:
        # The prompt is the last part of the body, after the base64 photo.
        at = body.rfind(PROMPT_PREFIX.encode())
        slot = body[at + len(PROMPT_PREFIX) : at + len(PROMPT_PREFIX) + 8].decode() if at >= 0 else "?"
        _call.set({"slot": slot, "bytes": len(body)})
        return await super()._api(method, path, query, headers, body, reader)

    def _begin(self, record: dict[str, Any]) -> tuple[str, int]:
        mode, number = super()._begin(record)
        if self.random.random() < self.failure_rate:
            mode = "503"
        call = _call.get({"slot": "?", "bytes": 0})
        call.update(n=number, mode=mode, start=time.time(), delay=self.random.uniform(*self.delay_range))
        return mode, number

    async def _wait_delay(self) -> None:
        await asyncio.sleep(_call.get()["delay"])

    def _finish(self) -> None:
        super()._finish()
        call = _call.get()
        self.record.write(json.dumps({**call, "end": time.time()}) + "\n")


def serve_fake(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--failure-rate", type=float, required=True)
    parser.add_argument("--min-delay", type=float, required=True)
    parser.add_argument("--max-delay", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    options = parser.parse_args(argv)
    fake = SoakGemini(
        port=options.port,
        record=options.record,
        failure_rate=options.failure_rate,
        delay_range=(options.min_delay, options.max_delay),
        seed=options.seed,
    )
    fake.serve_forever(lambda: print(f"soak gemini on {fake.port}", flush=True))


# ----------------------------------------------------------------------------- the stack


class SoakStack(Stack):
    """``bench/run.py``'s stack with ``scripts/run``'s processes, N web and M worker, on free ports."""

    def __init__(self, *, webs: int, workers: int) -> None:
        super().__init__(worker_concurrency=None, workers=workers, default_caps=True)
        self.env["DATA_DIR"] = str(DATA_DIR)
        self.env["LOG_LEVEL"] = "INFO"  # the worker logs each retry at INFO: the soak counts them
        self.logs = DATA_DIR / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.webs = webs
        self.web_ports = [free_port() for _ in range(webs)]
        self.fake_port = free_port()

    def setup_database(self) -> None:
        os.environ["DATABASE_APPLICATION_NAME"] = "soak-driver"
        super().setup_database()
        self.env["GEMINI_API_BASE"] = f"http://127.0.0.1:{self.fake_port}"
        from django.core.management import call_command
        from django.db import connections

        for number in range(1, BOOTHS + 1):
            slot = f"slot-{number:03d}"
            prompt = json.dumps({"prompt": f"{PROMPT_PREFIX}{slot}"})
            call_command("configure_slot", slot, "--settings", prompt, stdout=io.StringIO())
        connections.close_all()

    def up_soak(self, options: argparse.Namespace, record: Path) -> None:
        from photochanger.launcher import web_command, worker_command  # exactly what scripts/run starts

        python = sys.executable
        self.start(
            "fake",
            [
                python,
                str(Path(__file__).resolve()),
                "fake",
                "--port",
                str(self.fake_port),
                "--record",
                str(record),
                "--failure-rate",
                str(options.failure_rate),
                "--min-delay",
                str(options.min_delay),
                "--max-delay",
                str(options.max_delay),
                "--seed",
                str(options.seed),
            ],
        )
        for index, port in enumerate(self.web_ports, start=1):
            self.env["DATABASE_APPLICATION_NAME"] = f"photochanger-web-{index}"
            self.start(f"web-{index}", web_command(port, "127.0.0.1"))
        for index in range(1, self.workers + 1):
            self.env["DATABASE_APPLICATION_NAME"] = f"photochanger-worker-{index}"
            self.start(f"worker-{index}", worker_command())
        self.env.pop("DATABASE_APPLICATION_NAME")
        # Up = every web process is ready (/readyz) and every worker holds its LISTEN connection (a web
        # process opens its own at the first held request).
        expected = {
            f"photochanger-{name}-listen" for name in self.service_processes() if name.startswith("worker")
        }
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.logs / name}.log")
            try:
                ready = all(
                    httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
                    for port in self.web_ports
                )
                httpx.get(f"http://127.0.0.1:{self.fake_port}/__stats", timeout=2)
            except httpx.TransportError:
                ready = False
            if not ready:
                time.sleep(0.3)
                continue
            if expected <= set(self.connections()):
                return
            time.sleep(0.3)
        raise RuntimeError(
            f"the stack did not come up in 90 s: connections {self.connections()}, wanted {expected}"
        )

    def service_processes(self) -> dict[str, psutil.Process]:
        return {
            name: psutil.Process(process.pid) for name, process in self.processes.items() if name != "fake"
        }

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        import psycopg

        db = self.database
        with psycopg.connect(
            host=db.socket_dir,
            port=db.port,
            user=db.user,
            dbname=db.name,
            application_name="soak-sampler",
            autocommit=True,
        ) as conn:
            return conn.execute(sql, params).fetchall()

    def connections(self) -> dict[str, int]:
        rows = self.query(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND application_name NOT LIKE 'soak-%%' GROUP BY 1"
        )
        return {str(name): int(count) for name, count in rows}


# ----------------------------------------------------------------------------- booths and samples


@dataclass
class Post:
    slot: str
    port: int
    start: float  # wall clock (the fake's records use it too)
    end: float
    latency: float
    status: str  # "200", "504", … or "no answer: <error>"
    job_id: str = ""
    failure_reason: str = ""


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss_mb: dict[str, float]
    connections: dict[str, int]
    live_jobs: int
    load_average: float  # of the whole machine, over the last minute


@dataclass
class Run:
    posts: list[Post] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def booth(run: Run, slot: str, port: int, photo: bytes, started: float, stop_at: float) -> None:
    from jobs.tests.booth import booth_fields, booth_post, multipart_body

    while time.monotonic() < stop_at:
        began = time.monotonic()
        wall = time.time()
        body = multipart_body(booth_fields(photo, PASSWORD), "fileToUpload", photo)
        job_id = reason = ""
        try:
            response = booth_post(port, f"/ingest/{slot}", body, timeout=BOOTH_TIMEOUT_SECONDS)
            status = str(response.status)
            if response.status == 200:
                job_id = response.headers.get("x-job-id", "")
            else:
                with_error = response.json()
                job_id = str(with_error.get("job_id", ""))
                reason = str(with_error.get("failure_reason", ""))
        except (OSError, ValueError) as error:
            status = f"no answer: {error.__class__.__name__}"
        latency = time.monotonic() - began
        with run.lock:
            run.posts.append(Post(slot, port, wall, wall + latency, latency, status, job_id, reason))
        time.sleep(max(0.0, POST_EVERY_SECONDS - (time.monotonic() - began)))


def sampler(run: Run, stack: SoakStack, started: float, stop: threading.Event) -> None:
    processes = stack.service_processes()
    while True:
        rss = {name: process.memory_info().rss / 2**20 for name, process in processes.items()}
        live = stack.query("SELECT count(*) FROM jobs_job WHERE state IN ('pending', 'processing')")[0][0]
        at = round(time.monotonic() - started, 1)
        sample = Sample(at, rss, stack.connections(), int(live), os.getloadavg()[0])
        with run.lock:
            run.samples.append(sample)
        if stop.wait(SAMPLE_EVERY_SECONDS):
            return


# ----------------------------------------------------------------------------- figures


def quantile(values: list[float], index: int) -> float:
    """The (index + 1)-th percentile; 0 with fewer than two values."""
    return statistics.quantiles(values, n=100, method="inclusive")[index] if len(values) > 1 else 0.0


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a" if not values else f"{values[0] * 1000:.0f} ms (one)"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49] * 1000:.0f} ms, p95 {cuts[94] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms (n={len(values)})"


def report(
    run: Run,
    stack: SoakStack,
    calls: list[dict[str, Any]],
    started_wall: float,
    minutes: float,
    window: float,
) -> dict[str, Any]:
    posts = sorted(run.posts, key=lambda post: post.start)
    statuses: dict[str, int] = {}
    for post in posts:
        statuses[post.status] = statuses.get(post.status, 0) + 1
    ok = statuses.get("200", 0)
    print(
        f"\n== requests: {len(posts)} in {minutes:g} min ({len(posts) / (minutes * 60):.2f}/s), "
        f"success {ok / max(1, len(posts)):.2%} (200: {ok}), 504: {statuses.get('504', 0)}, "
        f"502: {statuses.get('502', 0)}, other: "
        f"{ {s: n for s, n in statuses.items() if s not in ('200', '502', '504')} or 'none' }"
    )

    # Overhead: the booth's latency minus the provider delays of its job's calls.
    by_slot: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_slot.setdefault(call["slot"], []).append(call)
    overheads: list[tuple[float, float, int]] = []  # (post start offset, overhead, provider calls)
    for post in posts:
        if post.status != "200":
            continue
        mine = [c for c in by_slot.get(post.slot, []) if post.start <= c["start"] <= post.end]
        overheads.append((post.start - started_wall, post.latency - sum(c["delay"] for c in mine), len(mine)))
    delays = [call["delay"] for call in calls]
    failed_calls = sum(1 for call in calls if call["mode"] != "image")
    print(
        f"== provider: {len(calls)} calls, {failed_calls} answered 503 ({failed_calls / max(1, len(calls)):.2%}); "
        f"delay {percentiles(delays)}"
    )
    print(
        f"== overhead (booth latency - provider delays of its calls), every 200: "
        f"{percentiles([o for _, o, _ in overheads])}"
    )
    print(
        f"   200s after one call: {percentiles([o for _, o, n in overheads if n == 1])}; "
        f"after a 503 and a retry (backoff 0.25-0.5 s included): {percentiles([o for _, o, n in overheads if n > 1])}"
    )
    latencies = [post.latency for post in posts if post.status == "200"]
    print(f"   booth latency of 200s: {percentiles(latencies)}, max {max(latencies, default=0):.1f} s")

    # Jobs: every row of the run final, one per answered request, its state matching the answer.
    rows = stack.query(
        "SELECT id::text, state, failure_reason, provider_calls FROM jobs_job WHERE created_at >= to_timestamp(%s)",
        started_wall - 1,
    )
    jobs = {job_id: (state, reason, provider_calls) for job_id, state, reason, provider_calls in rows}
    states: dict[str, int] = {}
    for state, _, _ in jobs.values():
        states[state] = states.get(state, 0) + 1
    answered = [post for post in posts if post.status in ("200", "502", "504")]
    expected_state = {"200": "succeeded", "502": "failed", "504": "timeout"}
    missing = [post for post in answered if post.job_id not in jobs]
    mismatched = [
        post
        for post in answered
        if post.job_id in jobs and jobs[post.job_id][0] != expected_state[post.status]
    ]
    unanswered = set(jobs) - {post.job_id for post in answered}
    live = {job_id for job_id, (state, _, _) in jobs.items() if state in ("pending", "processing")}
    stuck = 0
    if live:
        # Every booth has its answer, so a live job is one nobody waits for: it must still end by its
        # deadline (the worker's or cleanup's sweep). Stuck = live 10 s after its deadline.
        time.sleep(60)
        stuck = stack.query(
            "SELECT count(*) FROM jobs_job WHERE state IN ('pending', 'processing') "
            "AND expires_at < now() - interval '10 seconds' AND created_at >= to_timestamp(%s)",
            started_wall - 1,
        )[0][0]
    print(
        f"== jobs: {len(jobs)} rows, by state {dict(sorted(states.items()))}; "
        f"200+502+504 answers {len(answered)} -> {'equal' if len(answered) == len(jobs) else 'DIFFERENT'}"
    )
    print(
        f"   live (pending/processing) after the last answer: {len(live)}, still live 10 s past their deadline: "
        f"{stuck}; answers without a row: {len(missing)}; "
        f"rows in another state than the answer said: {len(mismatched)}; rows no answer names: {len(unanswered)}"
    )
    provider_calls = sum(calls_made for _, _, calls_made in jobs.values())
    retries = sum(
        log.read_text(errors="replace").count("retryable provider failure")
        for log in (stack.logs / f"{name}.log" for name in stack.processes if name.startswith("worker"))
    )
    print(
        f"   provider calls: fake counted {len(calls)}, jobs record {provider_calls}, "
        f"jobs {len(jobs)} + logged retries {retries} = {len(jobs) + retries}"
    )

    # Flat over time: the first vs the last comparison window.
    # Windows of the load itself: the idle sample at 0 s and the ones after the last booth's post are
    # shown but not compared.
    samples = run.samples
    end = minutes * 60
    first = [s for s in samples if 0 < s.at <= window]
    last = [s for s in samples if end - window <= s.at <= end + 1]
    print(f"\n== over time (samples every {SAMPLE_EVERY_SECONDS:.0f} s; first vs last {window:.0f} s)")
    names = list(samples[0].rss_mb) if samples else []
    applications = sorted({name for s in samples for name in s.connections})
    others = [a for a in applications if a.removeprefix("photochanger-").removesuffix("-listen") not in names]
    print(
        "  each process: RSS MB, PostgreSQL connections pool+LISTEN (application_name photochanger-<process>[-listen])"
    )
    print(
        "  t (s)"
        + "".join(f"{name:>20}" for name in names)
        + "".join(f"{a:>20}" for a in others)
        + "   live jobs   load"
    )

    def cell(sample: Sample, name: str) -> str:
        pool = sample.connections.get(f"photochanger-{name}", 0)
        listen = sample.connections.get(f"photochanger-{name}-listen", 0)
        return f"{sample.rss_mb[name]:.1f} MB {pool}+{listen}"

    step = max(1, round(60 / SAMPLE_EVERY_SECONDS)) if len(samples) > 13 else 1
    for sample in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(
            f"  {sample.at:5.0f}"
            + "".join(f"{cell(sample, name):>20}" for name in names)
            + "".join(f"{sample.connections.get(a, 0):20d}" for a in others)
            + f"{sample.live_jobs:12d}{sample.load_average:7.2f}"
        )

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else 0.0

    flat: dict[str, Any] = {}
    for name in names:
        before, after = mean([s.rss_mb[name] for s in first]), mean([s.rss_mb[name] for s in last])
        flat[f"rss {name}"] = (before, after)
    for application in applications:
        before = mean([s.connections.get(application, 0) for s in first])
        after = mean([s.connections.get(application, 0) for s in last])
        flat[f"connections {application}"] = (before, after)
    flat["connections, all of them"] = (
        mean([sum(s.connections.values()) for s in first]),
        mean([sum(s.connections.values()) for s in last]),
    )
    before_overhead = [o * 1000 for at, o, _ in overheads if at <= window]
    after_overhead = [o * 1000 for at, o, _ in overheads if at >= end - window]
    for name, index in (("p50", 49), ("p95", 94)):
        flat[f"overhead {name} ms"] = (quantile(before_overhead, index), quantile(after_overhead, index))
    for key, (before, after) in flat.items():
        ratio = after / before if before else float("nan")
        print(f"  {key:44} first {before:9.1f}   last {after:9.1f}   last/first {ratio:5.2f}")
    return {
        "statuses": statuses,
        "states": states,
        "flat": flat,
        "live": len(live),
        "stuck": stuck,
        "missing": len(missing),
        "mismatched": len(mismatched),
        "unanswered": len(unanswered),
    }


# ----------------------------------------------------------------------------- main


def main() -> None:
    if sys.argv[1:2] == ["fake"]:
        serve_fake(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--web", type=int, default=1, help="uvicorn processes (booths split across their ports)"
    )
    parser.add_argument("--workers", type=int, default=1, help="run_worker processes")
    parser.add_argument("--photo", default=str(BASE_DIR / "bench" / "photo.jpg"))
    parser.add_argument("--dslr", action="store_true", help="post a 6.5 MB 5472×3648 JPEG instead")
    parser.add_argument("--failure-rate", type=float, default=0.02)
    parser.add_argument("--min-delay", type=float, default=1.0)
    parser.add_argument("--max-delay", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=10)
    options = parser.parse_args()
    photo_path = dslr_photo(DATA_DIR / "dslr.jpg") if options.dslr else Path(options.photo)
    photo = photo_path.read_bytes()
    label = (
        f"{options.web}web-{options.workers}worker-{options.minutes:g}min{'-dslr' if options.dslr else ''}"
    )
    record = DATA_DIR / f"calls-{label}.jsonl"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)

    stack = SoakStack(webs=options.web, workers=options.workers)
    stack.setup_database()
    print(
        f"soak: {options.minutes:g} min, {BOOTHS} booths (a post at most every {POST_EVERY_SECONDS:g} s each), "
        f"{options.web} web ({', '.join(map(str, stack.web_ports))}) + {options.workers} worker process(es); "
        f"photo {photo_path.name} ({len(photo)} bytes); provider delay U({options.min_delay:g}, {options.max_delay:g}) s, "
        f"{options.failure_rate:.0%} 503; caps {stack.env['PROVIDER_CONCURRENCY']}, worker concurrency default; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    run = Run()
    try:
        stack.up_soak(options, record)
        started = time.monotonic()
        started_wall = time.time()
        stop_at = started + options.minutes * 60
        stop_sampling = threading.Event()
        sampling = threading.Thread(target=sampler, args=(run, stack, started, stop_sampling), daemon=True)
        sampling.start()
        booths = []
        for number in range(1, BOOTHS + 1):
            port = stack.web_ports[(number - 1) % options.web]
            thread = threading.Thread(
                target=booth, daemon=True, args=(run, f"slot-{number:03d}", port, photo, started, stop_at)
            )
            booths.append(thread)
            thread.start()
            time.sleep(POST_EVERY_SECONDS / BOOTHS)  # booths are not in step
        for thread in booths:
            thread.join()
        stop_sampling.set()
        sampling.join()
        load_average = os.getloadavg()
        time.sleep(1)  # the fake writes a call's line once the worker has read its answer
        calls = [json.loads(line) for line in record.read_text().splitlines()]
        window = min(60.0, options.minutes * 60 / 3)
        figures = report(run, stack, calls, started_wall, options.minutes, window)
        print(f"\nload average at the end: {' '.join(f'{value:.2f}' for value in load_average)}")
        out = DATA_DIR / f"soak-{label}.json"
        out.write_text(
            json.dumps(
                {
                    "options": vars(options),
                    "figures": figures,
                    "posts": [asdict(post) for post in run.posts],
                    "samples": [asdict(sample) for sample in run.samples],
                },
                indent=1,
            )
        )
        print(f"raw figures: {out.relative_to(BASE_DIR)}; logs: {stack.logs.relative_to(BASE_DIR)}")
    finally:
        stack.down()


if __name__ == "__main__":
    main()
