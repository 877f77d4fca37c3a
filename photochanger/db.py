"""Database access for async code on the hot path (ingest waiters, the queue worker).

Django's ORM is synchronous. Instead of Django's per-request threads (one thread and one connection per
held request), hot-path code runs its ORM calls in one small fixed pool of threads per process, so a
thousand held booth requests cost a handful of connections. With Django's connection pool configured
(``OPTIONS["pool"]``), every call hands its connection back to the pool when it returns, so the pool
checks, recycles and reconnects them; without one, each thread keeps its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from photochanger.errors import FailureReason, ServiceError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_executor: ThreadPoolExecutor | None = None
# One more thread (and connection) for small periodic work that must not wait behind a backlog of
# job queries: lease renewals, stale-job recovery, the waiters' re-check.
_housekeeping_executor: ThreadPoolExecutor | None = None


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.DB_EXECUTOR_THREADS, thread_name_prefix="db")
    return _executor


def _get_housekeeping_executor() -> ThreadPoolExecutor:
    global _housekeeping_executor
    if _housekeeping_executor is None:
        _housekeeping_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-housekeeping")
    return _housekeeping_executor


def uses_connection_pool() -> bool:
    return bool(settings.DATABASES["default"].get("OPTIONS", {}).get("pool"))


def _run(function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    try:
        return function(*args, **kwargs)
    except (OperationalError, InterfaceError) as error:
        # The server went away or the connection broke: drop it so the next call reconnects.
        logger.warning("database unavailable: %s", error.__class__.__name__)
        try:
            connection.close()
        except DatabaseError:
            pass
        raise ServiceError(
            FailureReason.SERVICE_UNAVAILABLE, "The database is unavailable; retry shortly."
        ) from error
    finally:
        if uses_connection_pool():
            # Back to Django's pool (which discards it if it broke), not kept by this thread.
            with contextlib.suppress(DatabaseError):
                connection.close()


async def db_call(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a synchronous ORM function in the hot-path pool. Database outages become a 503 error."""
    return await _call_in(_get_executor(), functools.partial(_run, function, *args, **kwargs))


async def db_housekeeping_call(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Like ``db_call`` on the housekeeping thread: never queued behind the job queries."""
    return await _call_in(_get_housekeeping_executor(), functools.partial(_run, function, *args, **kwargs))


async def _call_in(executor: ThreadPoolExecutor, call: Callable[[], R]) -> R:
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def connection_kwargs(purpose: str = "listen") -> dict[str, Any]:
    """psycopg arguments for a session connection of its own: LISTEN, and session advisory locks.

    ``LISTEN_DATABASE_URL`` when it is set (straight to PostgreSQL while ``DATABASE_URL`` goes through a
    transaction-pooling PgBouncer, which cannot keep a LISTEN or a session lock on one server
    connection), otherwise the default database.
    """
    db = settings.DATABASES["default"]
    application_name = db.get("OPTIONS", {}).get("application_name", "photochanger") + f"-{purpose}"
    if settings.LISTEN_DATABASE_URL:
        # libpq reads the URL itself (postgres://user:password@host:port/name, ?host=/socket/dir, …).
        return {"conninfo": settings.LISTEN_DATABASE_URL, "application_name": application_name}
    kwargs: dict[str, Any] = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "application_name": application_name,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


@contextlib.contextmanager
def session_advisory_lock(key: int) -> Iterator[bool]:
    """Try PostgreSQL's session advisory lock ``key`` for the ``with`` block; yields whether we got it.

    Taken on a connection of its own (``connection_kwargs``: straight to PostgreSQL when
    ``LISTEN_DATABASE_URL`` is set), never on Django's: through a transaction-pooling PgBouncer the
    unlock could reach another server connection than the lock, which would then stay held. Closing the
    connection (also when the process dies) releases it.
    """
    import psycopg

    with psycopg.connect(autocommit=True, **connection_kwargs("lock")) as lock_connection:
        row = lock_connection.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
        acquired = bool(row and row[0])
        try:
            yield acquired
        finally:
            if acquired:
                with contextlib.suppress(psycopg.Error):
                    lock_connection.execute("SELECT pg_advisory_unlock(%s)", [key])


async def listen_forever(
    channel: str,
    on_notify: Callable[[str], None],
    on_connected: Callable[[], Awaitable[None]] | None = None,
    reconnect_seconds: float = 1.0,
) -> None:
    """LISTEN on ``channel`` over one dedicated async connection, calling ``on_notify(payload)``.

    Reconnects after ``reconnect_seconds`` whenever the connection is lost; ``on_connected`` runs after
    every (re)connect, to catch up on anything sent while nobody was listening. Runs until cancelled.
    """
    import psycopg

    while True:
        try:
            async with await psycopg.AsyncConnection.connect(autocommit=True, **connection_kwargs()) as conn:
                await conn.execute(f"LISTEN {channel}")
                if on_connected is not None:
                    await on_connected()
                async for notification in conn.notifies():
                    on_notify(notification.payload)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("LISTEN %s connection lost (%s); reconnecting", channel, error.__class__.__name__)
            await asyncio.sleep(reconnect_seconds)


def db_pool_close() -> None:
    """Close every pool thread's connection and retire the pools (process exit, end of a test)."""
    global _executor, _housekeeping_executor
    pools = [(_executor, settings.DB_EXECUTOR_THREADS), (_housekeeping_executor, 1)]
    _executor = _housekeeping_executor = None
    for executor, threads in pools:
        if executor is None:
            continue
        barrier = threading.Barrier(threads)

        def close_in_this_thread(barrier: threading.Barrier = barrier) -> None:
            # The barrier keeps each task on its own thread, so every thread closes its own connection.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)
            connection.close()

        for future in [executor.submit(close_in_this_thread) for _ in range(threads)]:
            future.result()
        executor.shutdown(wait=True)
