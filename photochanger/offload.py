"""Small bounded thread pools for blocking work that async code must not run on its event loop.

Three kinds of blocking work, three pools, so none queues behind another:

- database queries: ``photochanger.db.db_call`` (``DB_EXECUTOR_THREADS`` threads);
- CPU and disk work of one request or job — multipart parsing, image header checks, file copies and
  hashing of photos: ``cpu_call`` (``CPU_EXECUTOR_THREADS``);
- the ingest password's deliberately slow hash: ``hash_call``, on one thread of its own, so a flood of
  wrong passwords can only ever occupy that thread, never the query or the CPU threads.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_executors: dict[str, ThreadPoolExecutor] = {}


def executor(name: str, threads: int) -> ThreadPoolExecutor:
    """The process-wide pool called ``name`` (created on first use)."""
    with _lock:
        pool = _executors.get(name)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix=name)
            _executors[name] = pool
        return pool


async def run_in(pool: ThreadPoolExecutor, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await asyncio.get_running_loop().run_in_executor(
        pool, functools.partial(function, *args, **kwargs)
    )


async def cpu_call(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run CPU or disk work (parsing, image checks, file copies) off the event loop."""
    return await run_in(executor("cpu", settings.CPU_EXECUTOR_THREADS), function, *args, **kwargs)


async def hash_call(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a password hash off the event loop, on threads nothing else uses."""
    return await run_in(executor("password-hash", 1), function, *args, **kwargs)


def shutdown_all() -> None:
    """Retire every pool (process exit, end of a test)."""
    with _lock:
        pools = list(_executors.values())
        _executors.clear()
    for pool in pools:
        pool.shutdown(wait=True)
