"""Benchmarks of the ingest pipeline (issue: core pipeline). Prints figures; asserts nothing.

Brings up its own stack on this machine, everything on 127.0.0.1: embedded PostgreSQL under
``var/bench``, the fake Gemini (``providers.tests.fakes.gemini``), one uvicorn web process and the
queue worker(s); configures the 15 slots for Gemini; then runs the scenarios with the reference load
generator (``../shared/bench/load.py``: raw asyncio HTTP/1.1 client, the booth's multipart fields) and
``bench/holds.py`` for the held-request scenario.

    .venv/bin/python bench/run.py [--only overhead,throughput,ceiling,holds] [--photo bench/photo.jpg]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
LOAD = (BASE_DIR / ".." / "shared" / "bench" / "load.py").resolve()
PASSWORD = "secret123"
WEB_PORT = 8765
FAKE_PORT = 9911


class Stack:
    def __init__(
        self,
        worker_concurrency: int | None,
        workers: int,
        *,
        default_caps: bool = False,
        web_processes: int = 1,
    ) -> None:
        # Production-like: DEBUG off (no query recording), a real secret, warnings only in logs.
        self.env = {
            **os.environ,
            "DATA_DIR": str(BASE_DIR / "var" / "bench"),
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "false",
            "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "LOG_LEVEL": "WARNING",
            # The fake has no rate limit; the cap is not what these scenarios measure (unless --defaults).
            "PROVIDER_CONCURRENCY": os.environ.get("BENCH_PROVIDER_CONCURRENCY", "gemini=4096"),
        }
        if default_caps:
            self.env["PROVIDER_CONCURRENCY"] = "gemini=64,openai=32,turbotext=32"  # a new install's caps
        self.env.pop("DATABASE_URL", None)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.worker_concurrency = worker_concurrency
        self.workers = workers
        self.web_processes = web_processes
        self.logs = BASE_DIR / "var" / "bench" / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def setup_database(self) -> None:
        os.environ.update({name: self.env[name] for name in ("DATA_DIR", "DEBUG", "SECRET_KEY")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")
        os.environ.pop("DATABASE_URL", None)
        sys.path.insert(0, str(BASE_DIR))
        from photochanger.embedded_db import ensure_database_url

        database = ensure_database_url()
        assert database is not None
        self.database = database
        self.env["DATABASE_URL"] = database.url
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)  # DEBUG is off: served from STATIC_ROOT
        call_command("configure_settings", "--ingest-password", PASSWORD, "--sync-seconds", "48",
                     "--provider-key", "gemini=bench-key")  # fmt: skip
        for number in range(1, 16):
            call_command("configure_slot", f"slot-{number:03d}", "--provider", "gemini", "--operation", "image_edit",
                         "--settings", json.dumps({"prompt": "bench"}), "--size-limit-mb", "20", "--active")  # fmt: skip
        from slots.models import StudioSettings

        # Provider caps live in the studio settings (the environment only seeds a new install).
        caps = {name: int(value) for name, _, value in
                (item.partition("=") for item in self.env["PROVIDER_CONCURRENCY"].split(","))}  # fmt: skip
        StudioSettings.objects.filter(id=1).update(provider_concurrency=caps)
        from django.db import connections

        connections.close_all()
        self.env["GEMINI_API_BASE"] = f"http://127.0.0.1:{FAKE_PORT}"

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")
        # Each process's connections show under its own name in pg_stat_activity (ConnectionSampler).
        env = {"DATABASE_APPLICATION_NAME": f"bench-{name}", **self.env}  # unless the caller named it
        process = subprocess.Popen(command, env=env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def up(self) -> None:
        python = sys.executable
        self.start(
            "fake", [python, "-m", "providers.tests.fakes.gemini", "--port", str(FAKE_PORT), "--no-inspect"]
        )
        self.start("web", [python, "-m", "uvicorn", "photochanger.asgi:application", "--host", "127.0.0.1",
                           "--port", str(WEB_PORT), "--loop", "uvloop", "--http", "httptools",
                           "--no-access-log", "--lifespan", "off", "--backlog", "4096",
                           *(["--workers", str(self.web_processes)] if self.web_processes > 1 else [])])  # fmt: skip
        concurrency = (
            [] if self.worker_concurrency is None else ["--concurrency", str(self.worker_concurrency)]
        )
        for index in range(self.workers):
            self.start(f"worker{index}", [python, "manage.py", "run_worker", *concurrency])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{WEB_PORT}/public/results/x", timeout=1)
                httpx.get(f"http://127.0.0.1:{FAKE_PORT}/__stats", timeout=1)
                time.sleep(1.5)  # workers finish starting
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("stack did not come up")

    def down(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=70)
            except subprocess.TimeoutExpired:
                process.kill()
        from photochanger.embedded_db import release_embedded_postgres

        release_embedded_postgres()


class ConnectionSampler:
    """Peak number of server connections (pg_stat_activity client backends) while a scenario runs, in
    total and per kind of connection (``bench-web``, ``bench-web-listen``, ``bench-worker0``, …: with
    several web processes, ``bench-web`` counts all of them)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak = 0
        self.peak_by_name: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        db = self.stack.database
        with psycopg.connect(
            host=db.socket_dir, port=db.port, user=db.user, dbname=db.name, autocommit=True
        ) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
                ).fetchall()
                self.peak = max(self.peak, sum(int(count) for _, count in rows))
                for name, count in rows:
                    self.peak_by_name[name] = max(self.peak_by_name.get(name, 0), int(count))
                time.sleep(0.1)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def load(stack: Stack, *args: str) -> dict[str, object]:
    out = BASE_DIR / "var" / "bench" / "results.jsonl"
    command = [sys.executable, str(LOAD), *args, "--port", str(WEB_PORT), "--fake-port", str(FAKE_PORT),
               "--pid", str(stack.processes["web"].pid), "--fake-pid", str(stack.processes["fake"].pid),
               "--out", str(out)]  # fmt: skip
    env = {**os.environ, "INGEST_PASSWORD": PASSWORD}
    with ConnectionSampler(stack) as sampler:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout)
    figures["pg_connections_peak"] = sampler.peak
    figures["pg_connections_peak_by_name"] = dict(sorted(sampler.peak_by_name.items()))
    return figures


def print_figures(title: str, figures: dict[str, object], keys: list[str]) -> None:
    print(f"\n== {title}")
    for key in keys:
        print(f"  {key}: {json.dumps(figures.get(key))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--only", default="overhead,overhead_dslr,throughput,ceiling,holds,passwords,slow",
        help="comma-separated scenarios",
    )  # fmt: skip
    parser.add_argument("--dslr-photo", default=str(BASE_DIR / "var" / "bench" / "dslr.jpg"))
    parser.add_argument("--photo", default=str(BASE_DIR / "bench" / "photo.jpg"))
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--worker-concurrency", type=int, default=1024)
    parser.add_argument(
        "--defaults", action="store_true",
        help="what a new install runs: run_worker's default concurrency and the default provider caps",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--web-processes", type=int, default=1,
        help="uvicorn --workers N on the one port (server CPU figures then count only uvicorn's supervisor)",
    )  # fmt: skip
    parser.add_argument("--holds", type=int, default=1000)
    parser.add_argument(
        "--slow-clients", type=int, default=300, help="connections trickling at 1 byte/s (slow)"
    )
    parser.add_argument("--serve", action="store_true", help="bring the stack up and wait (for profiling)")
    options = parser.parse_args()
    scenarios = set(options.only.split(","))

    concurrency = None if options.defaults else options.worker_concurrency
    stack = Stack(
        worker_concurrency=concurrency,
        workers=options.workers,
        default_caps=options.defaults,
        web_processes=options.web_processes,
    )
    stack.setup_database()
    stack.up()
    print(f"photo: {options.photo} ({Path(options.photo).stat().st_size} bytes); web pid {stack.processes['web'].pid}; "
          f"{options.web_processes} web process(es); {options.workers} worker(s) × concurrency {concurrency or 'default'}; "
          f"caps {stack.env['PROVIDER_CONCURRENCY']}")  # fmt: skip
    try:
        if options.serve:
            print(
                f"serving: web pid {stack.processes['web'].pid}, worker pid {stack.processes['worker0'].pid}",
                flush=True,
            )
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return
        if "overhead" in scenarios:
            figures = load(
                stack, "seq", "--photo", options.photo, "--n", "200", "--delay", "0", "--tag", "overhead"
            )
            print_figures("(a) overhead, 200 sequential, provider delay 0", figures,
                          ["codes", "overhead_ms", "server_cpu_ms_per_req", "pg_connections_peak"])  # fmt: skip
        if "overhead_dslr" in scenarios:
            dslr = dslr_photo(Path(options.dslr_photo))
            figures = load(
                stack, "seq", "--photo", str(dslr), "--n", "50", "--delay", "0", "--tag", "overhead_dslr"
            )
            print_figures(f"(a') overhead with a DSLR photo ({dslr.stat().st_size} bytes, 5472×3648), 50 sequential",
                          figures, ["codes", "overhead_ms", "server_cpu_ms_per_req", "pg_connections_peak"])  # fmt: skip
        if "throughput" in scenarios:
            for clients in (15, 60):
                figures = load(stack, "conc", "--photo", options.photo, "--clients", str(clients), "--slots", "15",
                               "--duration", str(options.duration), "--delay", "1.0", "--tag", f"conc{clients}")  # fmt: skip
                print_figures(f"(b) {clients} clients on 15 slots, provider delay 1 s, {options.duration:.0f} s", figures,
                              ["ok_per_s", "codes_all", "latency_ok_ms", "n_5xx", "conn_errors", "pg_connections_peak",
                               "pg_connections_peak_by_name"])  # fmt: skip
        if "ceiling" in scenarios:
            figures = load(stack, "conc", "--photo", options.photo, "--clients", "15", "--slots", "15",
                           "--duration", str(min(options.duration, 20)), "--delay", "0", "--tag", "ceiling")  # fmt: skip
            print_figures("(c) ceiling: 15 clients, provider delay 0", figures,
                          ["all_resp_per_s", "ok_per_s", "codes_all", "latency_ok_ms", "procs", "pg_connections_peak",
                           "pg_connections_peak_by_name"])  # fmt: skip
        if "holds" in scenarios:
            httpx.post(f"http://127.0.0.1:{FAKE_PORT}/__delay?s=5")
            command = [sys.executable, str(BASE_DIR / "bench" / "holds.py"), "--port", str(WEB_PORT),
                       "--photo", options.photo, "--n", str(options.holds), "--pid", str(stack.processes["web"].pid)]  # fmt: skip
            calls_before = httpx.get(f"http://127.0.0.1:{FAKE_PORT}/__stats").json()["calls"]
            with ConnectionSampler(stack) as sampler:
                result = subprocess.run(command, env={**os.environ, "INGEST_PASSWORD": PASSWORD},
                                        capture_output=True, text=True, check=True)  # fmt: skip
            figures = json.loads(result.stdout)
            figures["pg_connections_peak"] = sampler.peak
            time.sleep(2)  # calls cut at the deadline are counted by the fake once they end
            calls = httpx.get(f"http://127.0.0.1:{FAKE_PORT}/__stats").json()["calls"] - calls_before
            figures["provider_calls"] = calls
            figures["provider_calls_wasted"] = calls - figures["codes"].get("200", 0)
            print_figures(f"(d) {options.holds} concurrent held ingests, provider delay 5 s, one web process", figures,
                          list(figures))  # fmt: skip
        for scenario in ("passwords", "slow"):
            if scenario not in scenarios:
                continue
            httpx.post(f"http://127.0.0.1:{FAKE_PORT}/__delay?s=0")
            # The slow connections are watched for 40 s: past the 30 s body timeout, so their 408s show.
            seconds, pressure_clients = (
                ("20", "16") if scenario == "passwords" else ("40", str(options.slow_clients))
            )
            command = [sys.executable, str(BASE_DIR / "bench" / "pressure.py"), scenario, "--port", str(WEB_PORT),
                       "--photo", options.photo, "--password", PASSWORD, "--seconds", seconds, "--clients", pressure_clients]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            figures = json.loads(result.stdout)
            title = {"passwords": "(e) 16 clients guessing passwords as fast as they can",
                     "slow": f"(f) {pressure_clients} connections sending their bodies at 1 byte/s"}[scenario]  # fmt: skip
            print_figures(f"{title}, one booth posting meanwhile", figures, list(figures))
    finally:
        stack.down()


def dslr_photo(path: Path) -> Path:
    """A 20-megapixel JPEG of about 6.5 MB, made once (the same generator the tests use)."""
    if not path.exists():
        from jobs.tests.booth import make_dslr_jpeg

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_dslr_jpeg())
    return path


if __name__ == "__main__":
    main()
