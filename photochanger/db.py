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
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections

from photochanger.errors import FailureReason, ServiceError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# After a call failed to reach the database, the next attempt waits this long: calls queued behind the
# failed ones are answered at once instead of each waiting the pool's timeout again.
OUTAGE_PROBE_SECONDS = 0.5

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


class DatabaseUnavailable(ServiceError):
    """The database could not be reached (503 ``service_unavailable``).

    A distinct type so callers can tell it from other refusals: there is no point writing a log row
    about it, and work in flight can wait for the server to come back.
    """

    def __init__(self) -> None:
        super().__init__(FailureReason.SERVICE_UNAVAILABLE, "The database is unavailable; retry shortly.")


def uses_connection_pool() -> bool:
    return bool(settings.DATABASES["default"].get("OPTIONS", {}).get("pool"))


class _OutageGate:
    """While the last database call of this process failed to reach the server, one call at a time, at
    most every ``OUTAGE_PROBE_SECONDS``, tries again; the others fail at once.

    Without it every call waits the pool's whole timeout for a connection that cannot be opened, and
    the calls queued behind them on the few database threads wait for those: with 15 booths posting,
    a 503 would take several seconds instead of one. The first call that reaches the server again opens
    the gate for all.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed_at: float | None = None  # monotonic time of the last failure while the gate is shut
        self._probing = False

    def enter(self) -> bool:
        """Before a call: True when it is the one retrying the server. Raises when it may not try."""
        with self._lock:
            if self._failed_at is None:
                return False
            if self._probing or time.monotonic() - self._failed_at < OUTAGE_PROBE_SECONDS:
                raise DatabaseUnavailable()
            self._probing = True
            return True

    def leave(self, *, probe: bool, reached: bool) -> None:
        with self._lock:
            if probe:
                self._probing = False
            self._failed_at = None if reached else time.monotonic()


_outage_gate = _OutageGate()


def _run(function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    probe = _outage_gate.enter()
    reached = True
    try:
        return function(*args, **kwargs)
    except (OperationalError, InterfaceError) as error:
        # The server went away or the connection broke: drop it so the next call reconnects.
        reached = False
        logger.warning("database unavailable: %s", error.__class__.__name__)
        try:
            connection.close()
        except DatabaseError:
            pass
        raise DatabaseUnavailable() from error
    finally:
        _outage_gate.leave(probe=probe, reached=reached)
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

    Losing this connection is how a process learns that the server restarted even when it had nothing
    else to do: on the reconnect that follows, the connection pool's idle connections (broken by the
    same restart) are checked and replaced, so the next query does not fail on one of them.
    """
    import psycopg

    lost = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(autocommit=True, **connection_kwargs()) as conn:
                await conn.execute(f"LISTEN {channel}")
                if lost:
                    logger.info("LISTEN %s connection re-established", channel)
                    await asyncio.to_thread(pool_discard_broken_connections)
                    lost = False
                if on_connected is not None:
                    await on_connected()
                async for notification in conn.notifies():
                    on_notify(notification.payload)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            lost = True
            logger.warning("LISTEN %s connection lost (%s); reconnecting", channel, error.__class__.__name__)
            await asyncio.sleep(reconnect_seconds)


def pool_discard_broken_connections() -> None:
    """Check the pool's idle connections now (psycopg_pool's ``check()``): broken ones are replaced.

    Blocking (one empty query per idle connection). The pool does not check a connection before handing
    it out, so after a server restart each idle connection would otherwise fail one query first.
    """
    from django.db.backends.postgresql.base import DatabaseWrapper

    wrapper = connections["default"]
    pool = wrapper.pool if isinstance(wrapper, DatabaseWrapper) and uses_connection_pool() else None
    if pool is None or pool.closed:
        return  # not opened yet: nothing in it
    try:
        pool.check()
    except Exception as error:  # the server went away again: the next query will say so
        logger.warning("database pool check failed: %s", error.__class__.__name__)


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
