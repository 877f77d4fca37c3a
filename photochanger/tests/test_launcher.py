"""``scripts/run`` with several web and worker processes: all of them come up, and all of them go down."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from conftest import BASE_DIR, INGEST_PASSWORD, child_environment, database_url, free_port, wait_until
from jobs.models import WorkerHeartbeat
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from photochanger.launcher import CRASH_LOOP_EXITS

pytestmark = pytest.mark.django_db(transaction=True)

WEB_PROCESS_STARTED = re.compile(r"Started server process \[(\d+)\]")
WORKER_STARTED = re.compile(r"Worker \S+:(\d+):\w+ running with concurrency")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    assert wait_until(predicate, timeout), (
        f"{what} within {timeout} s:\n{log.read_text(errors='replace')[-4000:]}"
    )


@dataclass
class Run:
    """``scripts/run`` with WEB_PROCESSES=2 WORKER_PROCESSES=2, up and serving."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    web_pids: set[int]
    worker_pids: set[int]
    descendants: list[psutil.Process]

    def web_pids_seen(self) -> set[int]:
        return {int(pid) for pid in WEB_PROCESS_STARTED.findall(self.log.read_text())}

    def still_running(self) -> list[int]:
        return [
            process.pid
            for process in self.descendants
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        ]


@pytest.fixture
def run(studio: object, tmp_path: Path) -> Iterator[Run]:
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
    descendants: list[psutil.Process] = []
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
        descendants = psutil.Process(launcher.pid).children(recursive=True)
        yield Run(
            process=launcher,
            port=port,
            log=log,
            web_pids={int(pid) for pid in WEB_PROCESS_STARTED.findall(text)},
            worker_pids={int(pid) for pid in WORKER_STARTED.findall(text)},
            descendants=descendants,
        )
    finally:
        if launcher.poll() is None:
            descendants += psutil.Process(launcher.pid).children(recursive=True)
            launcher.kill()
        for process in descendants:
            with contextlib.suppress(psutil.Error):
                process.kill()
        launcher.wait(timeout=30)


def test_scripts_run_with_two_web_and_two_worker_processes_starts_them_all_and_stops_them_all(
    run: Run,
) -> None:
    under_scripts_run = {process.pid for process in run.descendants}
    assert len(run.web_pids) == 2 and run.web_pids <= under_scripts_run, "two uvicorn web processes"
    assert len(run.worker_pids) == 2 and run.worker_pids <= under_scripts_run, "two run_worker processes"
    wait_for(
        lambda: WorkerHeartbeat.objects.count() == 2,
        timeout=30,
        what="a heartbeat from each worker",
        log=run.log,
    )
    heartbeats = WorkerHeartbeat.objects.values_list("name", flat=True)
    assert {int(name.split(":")[1]) for name in heartbeats} == run.worker_pids
    # The one address serves (first_run made slot-001 the offline sepia demo).
    photo = make_jpeg(160, 120)
    answer = booth_post(
        run.port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    assert answer.status == 200, answer.body[:300]
    assert httpx.get(f"http://127.0.0.1:{run.port}/healthz", timeout=10).status_code == 200

    run.process.send_signal(signal.SIGTERM)

    assert run.process.wait(timeout=90) == 0
    assert "PhotoChanger stopped." in run.log.read_text()
    assert run.still_running() == [], "every web and worker process stopped with scripts/run"
    assert WorkerHeartbeat.objects.count() == 0, "both workers stopped cleanly (each removes its heartbeat)"


def worker_pids_seen(run: Run) -> list[int]:
    """Every run_worker process scripts/run started, in the order they started."""
    return [int(pid) for pid in WORKER_STARTED.findall(run.log.read_text())]


def test_a_dead_web_process_and_a_dead_worker_are_started_again_and_scripts_run_carries_on(run: Run) -> None:
    psutil.Process(sorted(run.web_pids)[0]).kill()
    wait_for(
        lambda: len(run.web_pids_seen()) == 3,
        timeout=60,
        what="uvicorn started a new web process",
        log=run.log,
    )
    psutil.Process(sorted(run.worker_pids)[0]).kill()
    wait_for(lambda: len(worker_pids_seen(run)) == 3, timeout=60, what="a new worker process", log=run.log)

    assert run.process.poll() is None, "scripts/run carries on"
    assert re.search(r"worker-\d exited with status -9; starting it again\.", run.log.read_text())
    replacement = worker_pids_seen(run)[-1]

    def replacement_beats() -> bool:
        names = WorkerHeartbeat.objects.values_list("name", flat=True)
        return replacement in {int(name.split(":")[1]) for name in names}

    wait_for(replacement_beats, timeout=30, what="a heartbeat from the new worker", log=run.log)
    photo = make_jpeg(160, 120)
    answer = booth_post(
        run.port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    )
    assert answer.status == 200, answer.body[:300]

    new_pids = (run.web_pids_seen() - run.web_pids) | (set(worker_pids_seen(run)) - run.worker_pids)
    run.descendants += [psutil.Process(pid) for pid in new_pids if psutil.pid_exists(pid)]
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(timeout=90) == 0
    assert run.still_running() == [], "the replacements stop with scripts/run too"


def test_a_worker_that_keeps_dying_takes_scripts_run_down_with_everything(run: Run) -> None:
    killed: list[int] = []
    victim = worker_pids_seen(run)[0]
    for _ in range(CRASH_LOOP_EXITS):
        run.descendants.append(psutil.Process(victim))
        psutil.Process(victim).kill()
        killed.append(victim)
        if len(killed) == CRASH_LOOP_EXITS:
            break
        # The same worker's replacement: the newest worker process to start.
        wait_for(
            lambda: len(worker_pids_seen(run)) == 2 + len(killed),
            timeout=60,
            what="the killed worker started again",
            log=run.log,
        )
        victim = worker_pids_seen(run)[-1]

    assert run.process.wait(timeout=90) == 1
    assert re.search(
        rf"worker-\d exited {CRASH_LOOP_EXITS} times within \d+ s .*; stopping the rest\.",
        run.log.read_text(),
    )
    run.descendants += [
        psutil.Process(pid) for pid in run.web_pids_seen() - run.web_pids if psutil.pid_exists(pid)
    ]
    assert run.still_running() == [], "no web or worker process outlives scripts/run"
