"""``scripts/run`` with several web and worker processes: all of them come up, and all of them go down."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from conftest import BASE_DIR, INGEST_PASSWORD, child_environment, database_url, free_port
from jobs.models import WorkerHeartbeat
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body

pytestmark = pytest.mark.django_db(transaction=True)

WEB_PROCESS_STARTED = re.compile(r"Started server process \[(\d+)\]")
WORKER_STARTED = re.compile(r"Worker \S+:(\d+):\w+ running with concurrency")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)


def test_scripts_run_with_two_web_and_two_worker_processes_starts_them_all_and_stops_them_all(
    studio, tmp_path
):
    port = free_port()
    log = tmp_path / "run.log"
    env = child_environment(
        {
            "DATABASE_URL": database_url(),
            "DATA_DIR": str(tmp_path / "data"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_PROCESSES": "2",
            "WORKER_PROCESSES": "2",
            "PHOTOCHANGER_TESTING": "1",
        }
    )
    with open(log, "wb") as output:
        launcher = subprocess.Popen(
            [str(BASE_DIR / "scripts" / "run")],
            env=env,
            cwd=BASE_DIR,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    started: list[psutil.Process] = []
    try:
        wait_for(
            lambda: (
                len(WEB_PROCESS_STARTED.findall(log.read_text())) == 2
                and len(WORKER_STARTED.findall(log.read_text())) == 2
            ),
            timeout=120,
            what="two web and two worker processes started",
            log=log,
        )
        text = log.read_text()
        assert "2 web and 2 worker process(es)" in text
        web_pids = {int(pid) for pid in WEB_PROCESS_STARTED.findall(text)}
        worker_pids = {int(pid) for pid in WORKER_STARTED.findall(text)}
        started = psutil.Process(launcher.pid).children(recursive=True)
        descendants = {process.pid for process in started}
        assert len(web_pids) == 2 and web_pids <= descendants, "two uvicorn web processes under scripts/run"
        assert len(worker_pids) == 2 and worker_pids <= descendants, (
            "two run_worker processes under scripts/run"
        )
        wait_for(
            lambda: WorkerHeartbeat.objects.count() == 2,
            timeout=30,
            what="a heartbeat from each worker",
            log=log,
        )
        assert {
            int(name.split(":")[1]) for name in WorkerHeartbeat.objects.values_list("name", flat=True)
        } == (worker_pids)
        # The one address serves (first_run made slot-001 the offline sepia demo).
        photo = make_jpeg(160, 120)
        answer = booth_post(
            port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
        )
        assert answer.status == 200, answer.body[:300]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=90) == 0
        assert "PhotoChanger stopped." in log.read_text()
        still_running = [
            process.pid for process in started if process.is_running() and process.status() != "zombie"
        ]
        assert still_running == [], "every web and worker process stopped with scripts/run"
        assert WorkerHeartbeat.objects.count() == 0, (
            "both workers stopped cleanly (each removes its heartbeat)"
        )
    finally:
        if launcher.poll() is None:
            started += psutil.Process(launcher.pid).children(recursive=True)
            launcher.kill()
        for process in started:
            with contextlib.suppress(psutil.Error):
                process.kill()
        launcher.wait(timeout=30)
