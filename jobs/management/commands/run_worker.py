"""``manage.py run_worker [--concurrency N]``: the queue worker loop (any number, on any machine).

``--concurrency`` (default 256) bounds the jobs one process works on at once; the provider caps in the
studio settings bound the calls in flight per provider across every worker.

SIGTERM/SIGINT: stop claiming, finish in-flight jobs, exit. A second signal exits at once (in-flight
jobs are abandoned; their leases lapse and another worker re-claims them while time remains).
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs.worker import DEFAULT_CONCURRENCY, Worker


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:  # the pure-asyncio loop works too, a little slower
        return None
    return uvloop.new_event_loop


class Command(BaseCommand):
    help = "Run the PhotoChanger queue worker until SIGTERM/SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=DEFAULT_CONCURRENCY,
            help=(
                f"jobs in flight at once in this process (default {DEFAULT_CONCURRENCY}); cheap coroutines "
                "on 6 database connections, so keep it above the sum of the provider caps (studio "
                "settings), which are what limit provider calls"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        concurrency = max(1, int(options["concurrency"]))
        # uvloop (installed with uvicorn[standard]) runs the worker's many sockets with less overhead.
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._run(concurrency))

    async def _run(self, concurrency: int) -> None:
        worker = Worker(concurrency=concurrency)
        loop = asyncio.get_running_loop()
        signals_seen = {"count": 0}

        def on_signal() -> None:
            signals_seen["count"] += 1
            if signals_seen["count"] == 1:
                self.stdout.write("Stopping: finishing in-flight jobs (signal again to exit now).")
                worker.request_stop()
            else:
                worker.abort()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        self.stdout.write(f"Worker {worker.name} running with concurrency {concurrency}.")
        self.stdout.flush()
        await worker.run()
        self.stdout.write(f"Worker stopped: {worker.stats}")
