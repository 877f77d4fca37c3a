"""Behind a real PgBouncer in transaction mode (Debian's ``pgbouncer``; skipped where it is not installed).

DATABASE_URL goes through PgBouncer with a small server pool, so the app's statements share a few server
connections in turn; LISTEN_DATABASE_URL goes straight to PostgreSQL. PgBouncer 1.18 knows nothing of
prepared statements: a statement prepared on one server connection and run on another would fail.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from conftest import BASE_DIR, INGEST_PASSWORD, Service, child_environment, database_url, free_port
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot
from slots.services import StudioSettingsChange, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# The embedded server runs as this system user when the tests run as root (photochanger.embedded_db);
# PgBouncer refuses to run as root and must reach the server's socket.
EMBEDDED_POSTGRES_USER = "embedded_postgres"


@pytest.fixture
def pgbouncer_url() -> Iterator[str]:
    if not os.path.exists(PGBOUNCER):
        pytest.skip("pgbouncer is not installed (scripts/test installs Debian's pgbouncer as root)")
    db = connection.settings_dict
    user = str(db["USER"] or "postgres")
    # Not under pytest's tmp_path: its parent folders are closed to PgBouncer's user.
    folder = Path(tempfile.mkdtemp(prefix="photochanger-pgbouncer-"))
    port = free_port()
    server = f"host={db['HOST']} port={db['PORT'] or 5432} dbname={db['NAME']}"
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{db["NAME"]} = {server}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = 3
max_client_conn = 500
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    command = [PGBOUNCER]
    if os.getuid() == 0:
        account = pwd.getpwnam(EMBEDDED_POSTGRES_USER)
        os.chown(folder, account.pw_uid, account.pw_gid)
        for path in folder.iterdir():
            os.chown(path, account.pw_uid, account.pw_gid)
        command += ["-u", EMBEDDED_POSTGRES_USER]
    bouncer = subprocess.Popen([*command, str(folder / "pgbouncer.ini")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if bouncer.poll() is not None or time.monotonic() > deadline:
                    bouncer.terminate()
                    raise RuntimeError(
                        f"pgbouncer did not start: {bouncer.communicate(timeout=10)[1]!r}"
                    ) from None
                time.sleep(0.1)
        yield f"postgresql://{user}@127.0.0.1:{port}/{db['NAME']}"
    finally:
        bouncer.terminate()
        bouncer.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_behind_pgbouncer_in_transaction_mode_every_booth_gets_its_photo(
    service: Service, studio: Any, settings: Any, fake_gemini: Any, pgbouncer_url: str
) -> None:
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=20))
    Slot.objects.filter(id="slot-001").update(
        provider="gemini", operation="image_edit", settings={"prompt": "make it art"}, is_active=True
    )
    fake_gemini.delay = 0.1
    env = {
        "DATABASE_URL": pgbouncer_url,
        "LISTEN_DATABASE_URL": database_url(),
        "WORKER_POLL_SECONDS": "3600",
        "INGEST_WAITER_RECHECK_SECONDS": "3600",
    }
    port = free_port()
    web = service.start_web_process(port, env)
    try:
        service.start_worker(env=env)

        def post(_: int) -> int:
            photo = make_jpeg(160, 120)
            body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
            return booth_post(port, "/ingest/slot-001", body).status

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(post, range(40)))
        assert statuses == [200] * 40
        assert Job.objects.filter(state="succeeded").count() == 40
        assert fake_gemini.calls == 40
    finally:
        service.stop_workers()
        web.stop()
    assert "prepared statement" not in web.output()


@contextlib.contextmanager
def busy_pool(url: str, clients: int = 4) -> Iterator[None]:
    """Other clients running short transactions all along, so PgBouncer hands each statement of a
    command whichever server connection is free: a session lock and its unlock land on different ones."""
    import psycopg

    stop = threading.Event()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            # Like the app's, these never prepare: through PgBouncer a prepared name would collide.
            with psycopg.connect(url, autocommit=True, prepare_threshold=None) as busy:
                while not stop.is_set():
                    busy.execute("SELECT pg_sleep(0.002)")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert errors == []


# Both cron commands take their lock with photochanger.db.session_advisory_lock; on Django's connection
# a second run through a busy PgBouncer would find the lock left behind on another server connection.
@pytest.mark.parametrize("command", ["cleanup", "prune_history"])
def test_behind_a_busy_pgbouncer_a_cron_command_runs_again_and_again_without_leaving_its_lock_behind(
    studio: Any, pgbouncer_url: str, command: str
) -> None:
    env = child_environment(
        {"PHOTOCHANGER_TESTING": "1", "DATABASE_URL": pgbouncer_url, "LISTEN_DATABASE_URL": database_url()}
    )
    with busy_pool(pgbouncer_url):
        for _ in range(5):
            result = subprocess.run(
                [sys.executable, str(BASE_DIR / "manage.py"), command],
                env=env,
                cwd=BASE_DIR,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            assert "nothing done" not in result.stdout, result.stdout
