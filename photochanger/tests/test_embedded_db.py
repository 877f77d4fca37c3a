"""The embedded PostgreSQL server: started when missing, reused when running, stopped on exit."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

PROBE = textwrap.dedent(
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
    if len(sys.argv) > 2:
        sys.stdin.readline()  # hold the handle until told to exit
    """
)


def _probe(data_dir: Path, hold: bool = False) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", PROBE, str(data_dir)] + (["hold"] if hold else [])
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, env=env)


def _server_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_server_is_started_reused_and_stopped_on_exit(tmp_path):
    holder = _probe(tmp_path, hold=True)
    assert holder.stdout is not None
    first = json.loads(holder.stdout.readline())
    assert first["db"] == "photochanger"
    assert first["version"].startswith("18")
    assert first["max_connections"] == "200"
    assert psutil.pid_exists(first["pid"])

    # A second process while the first still holds the server: same server, not a new one.
    second_process = _probe(tmp_path)
    out, _ = second_process.communicate(timeout=60)
    second = json.loads(out)
    assert second["pid"] == first["pid"]
    assert psutil.pid_exists(first["pid"]), "a process that only reused the server must not stop it"

    # The process that started it exits: the server stops with it.
    holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    deadline = time.monotonic() + 30
    while _server_running(first["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _server_running(first["pid"])
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def test_a_holder_that_died_does_not_keep_the_server_running(tmp_path):
    holder = _probe(tmp_path, hold=True)
    assert holder.stdout is not None
    server_pid = json.loads(holder.stdout.readline())["pid"]
    holder.kill()  # no atexit: its handle stays in the list
    holder.wait(timeout=30)
    assert _server_running(server_pid)

    last = _probe(tmp_path)
    out, _ = last.communicate(timeout=60)
    assert json.loads(out)["pid"] == server_pid, "the running server was reused"
    deadline = time.monotonic() + 30
    while _server_running(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _server_running(server_pid), "the last live holder stopped it"
