"""``scripts/run``: bring PhotoChanger up in the foreground and take it down on Ctrl-C.

Starts (or reuses) the embedded PostgreSQL server when ``DATABASE_URL`` is not set and hands its URL to
the children, migrates, runs first-time bootstrap (admin + ingest password, printed once), then runs the
web server (uvicorn) and the queue workers as child processes:

- ``WEB_PROCESSES`` (default 1) web processes: one uvicorn on ``PORT`` with ``--workers N`` when N > 1
  (uvicorn's own supervisor shares the one listening socket and restarts a web process that dies), so
  booths and the reverse proxy keep one address;
- ``WORKER_PROCESSES`` (default 1) ``run_worker`` processes.

Either may be 0 (a machine that only serves, or only works the queue). A child that exits on its own
(killed, out of memory, crashed) is started again a second later, so an event goes on without anyone at
the keyboard; one that exits ``CRASH_LOOP_EXITS`` times within ``CRASH_LOOP_SECONDS`` is not being helped
by that (a bad setting, a database refusing it), and everything stops with exit status 1.
SIGINT/SIGTERM stop the children, then the embedded server (unless another process still holds it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent
RESTART_DELAY_SECONDS = 1.0
CRASH_LOOP_EXITS = 5
CRASH_LOOP_SECONDS = 60.0


def _process_count(name: str) -> int:
    text = os.environ.get(name, "1").strip() or "1"
    if not text.isdigit():
        raise SystemExit(f"{name} must be a whole number of processes (0 or more), got {text!r}.")
    return int(text)


def web_command(port: int, host: str, processes: int = 1) -> list[str]:
    """The web server as ``scripts/run`` starts it: one uvicorn, ``--workers N`` when N > 1."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "photochanger.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--lifespan",
        "off",
        "--timeout-graceful-shutdown",
        "65",
        *(["--workers", str(processes)] if processes > 1 else []),
    ]


def worker_command() -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), "run_worker"]


def _child_commands(port: int, host: str, web_processes: int, worker_processes: int) -> dict[str, list[str]]:
    commands = {"web": web_command(port, host, web_processes)} if web_processes else {}
    for number in range(1, worker_processes + 1):
        commands[f"worker-{number}"] = worker_command()
    return commands


def _kill_descendants(pid: int) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        for descendant in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                descendant.kill()


def main() -> int:
    web_processes = _process_count("WEB_PROCESSES")
    worker_processes = _process_count("WORKER_PROCESSES")
    if web_processes + worker_processes == 0:
        raise SystemExit("WEB_PROCESSES and WORKER_PROCESSES are both 0: nothing to run.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")
    # Ingest URLs shown to staff (and links given to providers) point at this server unless told otherwise.
    os.environ.setdefault(
        "PUBLIC_BASE_URL", f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
    )
    os.chdir(BASE_DIR)
    from photochanger.embedded_db import ensure_database_url, release_embedded_postgres

    # Before the settings load: they read DATABASE_URL, and the children inherit it.
    embedded = ensure_database_url()
    if embedded is not None:
        print(f"Embedded PostgreSQL {embedded.socket_dir} (database {embedded.name})", flush=True)
    import django

    django.setup()
    from django.core.management import call_command

    child_env = dict(os.environ)

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("bootstrap")
    call_command("first_run")

    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    from django.db import connections

    connections.close_all()

    commands = _child_commands(port, host, web_processes, worker_processes)

    def start(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            commands[name],
            env={**child_env, "DATABASE_APPLICATION_NAME": f"photochanger-{name}"},
            cwd=BASE_DIR,
        )

    children: dict[str, subprocess.Popen[bytes]] = {name: start(name) for name in commands}
    print(
        f"PhotoChanger is up: {web_processes} web and {worker_processes} worker process(es); "
        f"admin at http://{host}:{port}/admin/ — Ctrl-C stops it.",
        flush=True,
    )

    stopping = {"signals": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping["signals"] += 1
        sig = signal.SIGTERM if stopping["signals"] == 1 else signal.SIGKILL
        for child in children.values():
            if child.poll() is None:
                if sig == signal.SIGKILL:
                    # uvicorn's own web processes would outlive their killed supervisor.
                    _kill_descendants(child.pid)
                child.send_signal(sig)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    exit_code = 0
    exits: dict[str, list[float]] = {name: [] for name in children}  # when each child exited on its own
    restart_at: dict[str, float] = {}
    while True:
        exited = {name: child.poll() for name, child in children.items()}
        if all(code is not None for code in exited.values()) and (stopping["signals"] or not restart_at):
            break
        now = time.monotonic()
        if not stopping["signals"]:
            for name, code in exited.items():
                if code is None or name in restart_at:
                    continue
                recent = [moment for moment in exits[name] if now - moment < CRASH_LOOP_SECONDS] + [now]
                exits[name] = recent
                if len(recent) >= CRASH_LOOP_EXITS:
                    print(
                        f"{name} exited {len(recent)} times within {CRASH_LOOP_SECONDS:.0f} s (last exit status "
                        f"{code}); stopping the rest.",
                        file=sys.stderr,
                        flush=True,
                    )
                    exit_code = 1
                    restart_at.clear()
                    on_signal(signal.SIGTERM, None)
                    break
                print(f"{name} exited with status {code}; starting it again.", file=sys.stderr, flush=True)
                restart_at[name] = now + RESTART_DELAY_SECONDS
            for name, moment in list(restart_at.items()):
                if moment <= now and not stopping["signals"]:
                    del restart_at[name]
                    children[name] = start(name)
        time.sleep(0.2)

    release_embedded_postgres()
    print("PhotoChanger stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
