"""PostgreSQL stops and starts again while 15 booths post: real uvicorn, run_worker and PostgreSQL processes.

The server is one of the test's own (``jobs.tests.separate_postgres``): the session's shared server is
never touched. One run of the scenario (module fixture ``restart_run``) is judged by several tests:

- 2 web processes and 2 workers (their fallback poll set to 30 s, so only their LISTEN connections can
  wake them quickly), fake Gemini answering in 1 s, a 12 s sync window;
- 15 booths post in a loop, pausing 0.3–1.5 s between photos (five of them send 1.5 MB photos, which
  the web process checks against the slot's size limit before reading the body);
- after 3 s the server is stopped (``pg_ctl stop -m fast``), stays down 3 s (1 s in, every booth posts
  once more at the same moment), and is started again on the same data directory; the booths keep
  posting for 8 s more, then every job is left to end.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import INGEST_PASSWORD, Service, ServiceProcess, free_port, service_environment, wait_until
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body, pad_jpeg
from jobs.tests.separate_postgres import SeparatePostgres, separate_postgres

BOOTHS = 15
SYNC_SECONDS = 12
PROVIDER_DELAY = 1.0
WARM_UP_SECONDS = 3.0
OUTAGE_SECONDS = 3.0
AFTER_RETURN_SECONDS = 8.0
# What the issue asks: answers during the outage within 2 s, recovery within 5 s of the server's return.
OUTAGE_ANSWER_BOUND = 2.0
RECOVERY_BOUND = 5.0
LISTEN_CHANNELS = {
    "test-web-listen": "photochanger_job_finished",
    "test-worker-listen": "photochanger_job_created",
}

CONFIGURE_SLOTS = """
from slots import services
from slots.models import Slot
for slot in Slot.objects.order_by("id"):
    services.slot_update(slot=slot, fields={
        "provider": "gemini", "operation": "image_edit", "settings": {"prompt": "make it art"}, "is_active": True,
    })
"""


@dataclass
class Attempt:
    booth: int
    started: float  # time.monotonic()
    ended: float = 0.0
    status: int | None = None  # None: no HTTP answer at all (connection refused or reset)
    failure_reason: str = ""
    job_id: str = ""

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


@dataclass
class RestartRun:
    attempts: list[Attempt] = field(default_factory=list)
    stop_called: float = 0.0  # monotonic
    stop_called_wall: datetime | None = None
    down_at: float = 0.0  # pg_ctl stop returned: the server is gone
    back_at: float = 0.0  # the server accepts connections again
    # LISTEN connections seen RECOVERY_BOUND seconds after the server's return: (application, query).
    listeners_after_return: list[tuple[str, str]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    live_jobs_left: int = -1
    provider_calls: int = 0
    inputs_left: list[str] = field(default_factory=list)
    processes: list[ServiceProcess] = field(default_factory=list)


def photo_for(booth: int) -> bytes:
    photo = make_jpeg(160, 120)
    # Booths 0–4 send DSLR-sized bodies: over 1 MB, the web process asks the database for the slot's
    # size limit before it lets the body in.
    return pad_jpeg(photo, 1_500_000) if booth < 5 else photo


def post_once(booth: int, port: int, attempts: list[Attempt]) -> None:
    photo = photo_for(booth)
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    attempt = Attempt(booth=booth, started=time.monotonic())
    try:
        response = booth_post(port, f"/ingest/slot-{booth + 1:03d}", body, timeout=SYNC_SECONDS + 30)
    except OSError:
        attempt.ended = time.monotonic()
    else:
        attempt.ended = time.monotonic()
        attempt.status = response.status
        attempt.job_id = response.headers.get("x-job-id", "")
        if response.status != 200:
            attempt.failure_reason = response.json().get("failure_reason", "")
    attempts.append(attempt)


def booth_loop(booth: int, port: int, stop: threading.Event, attempts: list[Attempt]) -> None:
    while not stop.is_set():
        post_once(booth, port, attempts)
        stop.wait(random.uniform(0.3, 1.5))


def burst(port_of: Any, attempts: list[Attempt]) -> None:
    """Every booth posts at the same moment (on top of the booths' loops), all answered before it returns."""
    threads = [threading.Thread(target=post_once, args=(n, port_of(n), attempts)) for n in range(BOOTHS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SYNC_SECONDS + 40)


def listen_connections(database: SeparatePostgres) -> list[tuple[str, str]]:
    return [
        (application, query)
        for application, query in database.query(
            "SELECT application_name, query FROM pg_stat_activity WHERE application_name LIKE '%%-listen'"
        )
    ]


@pytest.fixture(scope="module")
def restart_run(
    tmp_path_factory: pytest.TempPathFactory, fake_gemini: Any, fake_openai: Any, fake_turbotext: Any
) -> Iterator[RestartRun]:
    root = tmp_path_factory.mktemp("restart")
    with separate_postgres() as database:
        environment = service_environment(
            database_url=database.url, media_root=root / "media", fake_gemini=fake_gemini,
            fake_openai=fake_openai, fake_turbotext=fake_turbotext,
        )  # fmt: skip
        database.manage(
            "configure_settings", "--ingest-password", INGEST_PASSWORD, "--sync-seconds", str(SYNC_SECONDS),
            "--provider-key", "gemini=test-gemini-key", "--provider-cap", "gemini=100",
            env={"SYNC_RESPONSE_MIN_SECONDS": "1"},
        )  # fmt: skip
        database.manage("shell", "-c", CONFIGURE_SLOTS)
        fake_gemini.reset()
        fake_gemini.delay = PROVIDER_DELAY
        service = Service(environment, root, root / "media")
        run = RestartRun()
        try:
            ports = [free_port(), free_port()]
            webs = [service.start_web_process(port, {}) for port in ports]
            # Polling every 30 s: a booth served in time after the restart was woken by NOTIFY.
            workers = [service.start_worker(env={"WORKER_POLL_SECONDS": "30"}) for _ in range(2)]
            run.processes = [*webs, *workers]
            stop = threading.Event()
            booths = [
                threading.Thread(target=booth_loop, args=(n, ports[n % 2], stop, run.attempts), daemon=True)
                for n in range(BOOTHS)
            ]
            for thread in booths:
                thread.start()
            time.sleep(WARM_UP_SECONDS)
            run.stop_called, run.stop_called_wall = time.monotonic(), datetime.now(UTC)
            database.stop()
            run.down_at = time.monotonic()
            time.sleep(1.0)
            # Most booths are held by then (their photos reached the provider before the stop): a burst
            # makes sure the outage meets 15 requests at once.
            burst(lambda n: ports[n % 2], run.attempts)
            time.sleep(max(0.0, run.down_at + OUTAGE_SECONDS - time.monotonic()))
            database.start_again()
            run.back_at = time.monotonic()
            time.sleep(RECOVERY_BOUND)
            run.listeners_after_return = listen_connections(database)
            time.sleep(AFTER_RETURN_SECONDS - RECOVERY_BOUND)
            stop.set()
            for thread in booths:
                thread.join(timeout=SYNC_SECONDS + 40)

            def no_live_jobs() -> bool:
                return not database.query("SELECT 1 FROM jobs_job WHERE state IN ('pending', 'processing')")

            wait_until(no_live_jobs, timeout=SYNC_SECONDS + 5, interval=0.2)
            run.live_jobs_left = database.query(
                "SELECT count(*) FROM jobs_job WHERE state IN ('pending', 'processing')"
            )[0][0]
            columns = ("id", "state", "created_at", "expires_at", "finalized_at", "claim_count")
            run.jobs = [
                dict(zip(columns, row, strict=True))
                for row in database.query(f"SELECT {', '.join(columns)} FROM jobs_job")  # noqa: S608
            ]
            run.inputs_left = [path.name for path in (root / "media" / "inputs").glob("*")]
            run.provider_calls = fake_gemini.calls
            yield run
        finally:
            service.stop_workers()
            for web in run.processes[:2]:
                web.stop()


def describe(attempts: list[Attempt]) -> str:
    return ", ".join(f"{a.status}/{a.failure_reason or '-'} in {a.elapsed:.2f}s" for a in attempts[:20])


def test_booths_posting_while_postgresql_is_down_get_503_service_unavailable_within_two_seconds(restart_run):
    during = [a for a in restart_run.attempts if restart_run.down_at <= a.started < restart_run.back_at]
    refused = [a for a in during if a.status != 200]
    assert len(refused) >= BOOTHS, f"the outage saw too few requests to judge: {len(refused)}"
    assert {(a.status, a.failure_reason) for a in refused} == {(503, "service_unavailable")}, describe(
        refused
    )
    slowest = max(a.elapsed for a in refused)
    # Measured at the booth (request sent → answer read, over loopback): the server's own time plus
    # a few milliseconds.
    assert slowest <= OUTAGE_ANSWER_BOUND, f"slowest answer during the outage took {slowest:.2f} s"
    # A booth served instead posted while the server was starting again (it accepted connections before
    # pg_ctl reported it); none waited for the server's return.
    served = [a for a in during if a.status == 200]
    assert all(a.started >= restart_run.back_at - OUTAGE_ANSWER_BOUND for a in served), describe(served)


def test_no_request_fails_with_500_or_goes_unanswered_around_the_restart(restart_run):
    statuses = {a.status for a in restart_run.attempts}
    assert statuses <= {200, 503, 504}, sorted(statuses, key=str)
    assert max(a.elapsed for a in restart_run.attempts) <= SYNC_SECONDS + 3, (
        "every request was answered in time"
    )
    for process in restart_run.processes:
        assert process.process.poll() is None, f"{process.name} died:\n{process.output()[-3000:]}"
        assert "Traceback" not in process.output(), process.output()[-5000:]


def test_booths_posting_five_seconds_after_the_servers_return_get_their_image(restart_run):
    after = [a for a in restart_run.attempts if a.started >= restart_run.back_at + RECOVERY_BOUND]
    assert len(after) >= 10
    assert {a.status for a in after} == {200}, describe([a for a in after if a.status != 200])
    # The worker polls only every 30 s: answered within a few seconds, each job was claimed on NOTIFY
    # received by its re-established LISTEN connection.
    assert max(a.elapsed for a in after) < PROVIDER_DELAY + 4


def test_every_process_listens_again_within_five_seconds_of_the_servers_return(restart_run):
    listening = sorted(restart_run.listeners_after_return)
    expected = sorted(
        [("test-web-listen", f"LISTEN {LISTEN_CHANNELS['test-web-listen']}")] * 2
        + [("test-worker-listen", f"LISTEN {LISTEN_CHANNELS['test-worker-listen']}")] * 2
    )
    assert listening == expected


def test_jobs_accepted_before_the_restart_end_succeeded_or_timeout_and_none_stays_live(restart_run):
    before = [job for job in restart_run.jobs if job["created_at"] < restart_run.stop_called_wall]
    assert len(before) >= BOOTHS
    assert {job["state"] for job in before} <= {"succeeded", "timeout"}, [
        (job["id"], job["state"]) for job in before if job["state"] not in ("succeeded", "timeout")
    ]
    assert restart_run.live_jobs_left == 0
    late = [job for job in restart_run.jobs if job["finalized_at"] > job["expires_at"] + timedelta(seconds=2)]
    assert late == [], "a job stayed live past its deadline"
    assert restart_run.inputs_left == [], "every final job's input photo was deleted"


def test_work_in_flight_during_the_restart_is_finished_by_its_claim_without_calling_the_provider_again(
    restart_run,
):
    # Provider calls that ended while the server was down were written once it was back (the worker
    # retries the finalize); no lease lapsed during the outage was taken for a dead worker's.
    reclaimed = [job["id"] for job in restart_run.jobs if job["claim_count"] > 1]
    assert reclaimed == []
    claimed = [job for job in restart_run.jobs if job["claim_count"] == 1]
    assert restart_run.provider_calls == len(claimed)
