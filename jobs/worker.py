"""The queue worker: claim, commit, work, finalize.

One asyncio loop per process runs up to ``concurrency`` jobs at once (coroutines, cheap: the providers'
caps in the studio settings, enforced by the claim, are what limits calls in flight). Claims use
``SELECT … FOR UPDATE SKIP LOCKED`` and commit before the provider is called; the provider call runs
with no transaction and no row lock held, with the job's remaining time as its timeout; the result is
finalized with a conditional update that only the current claim can win. Leases are renewed while a
job runs, so a worker that dies lets another re-claim the job once the lease lapses (or the job times
out at its deadline). The event loop never waits on the disk: files are read and written in threads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from jobs import attempts, late_results, services
from jobs.heartbeats import worker_heartbeat_beat, worker_heartbeat_stop
from jobs.services import ClaimedJob, Outcome, StoredResult
from jobs.share import SHARE_QR_OFF, share_qr_stamp, share_token_new
from jobs.states import JobState
from media import storage, thumbnails
from media.images import FarTooManyPixels, UnreadableImage, decoded_image_type, sniff_image_type
from media.services import public_link_create
from photochanger.db import DatabaseUnavailable, db_call, db_housekeeping_call, db_pool_close, listen_forever
from photochanger.deadlines import remaining_seconds
from photochanger.errors import FailureReason, ServiceError
from providers.base import (
    Provider,
    ProviderDeadlineExceeded,
    ProviderError,
    ProviderImage,
    ProviderRequest,
    ProviderResult,
    StoredImage,
    TemplateImage,
)
from providers.registry import get_provider
from providers.services import provider_key_get

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 256
LEASE_RENEW_FRACTION = 0.3
CONNECTIONS_PER_CLIENT = 32
API_KEY_CACHE_SECONDS = 5.0
# A job that gave up before its deadline waits for it in slices this long (wall-clock time decides).
DEADLINE_WAIT_SLICE_SECONDS = 0.5
# How often a worker records that it is alive (jobs.heartbeats; /readyz wants one within 30 s).
HEARTBEAT_SECONDS = 5.0
# Input thumbnails are made on a small pool of their own, at the same time as the provider call. The
# booth's answer never waits for one: a thumbnail not made yet when the outcome is ready is recorded
# right after the finalize, which leaves the input photo to the worker until then (at most this long).
THUMBNAIL_THREADS = 2
THUMBNAIL_NICE = 10
LATE_THUMBNAIL_WAIT_SECONDS = 30.0
# A job's outcome that cannot be written because the database is unreachable is tried again this often,
# until the job's deadline is this far behind (then whoever reaches the database first writes the timeout).
FINALIZE_RETRY_SECONDS = 0.5
FINALIZE_RETRY_GRACE_SECONDS = 10.0
# A job's attempt whose call runs on past the deadline for a late result (Job.attempts "outcome").
LATE_PENDING = "late_pending"
_thumbnail_executor: ThreadPoolExecutor | None = None


def thumbnail_executor() -> ThreadPoolExecutor:
    """The worker's pool for input thumbnails (created on first use)."""
    global _thumbnail_executor
    if _thumbnail_executor is None:
        _thumbnail_executor = ThreadPoolExecutor(
            max_workers=THUMBNAIL_THREADS, thread_name_prefix="thumbnail", initializer=_lower_thread_priority
        )
    return _thumbnail_executor


def _lower_thread_priority() -> None:
    """Staff previews yield the CPU to booths: on Linux a thread has its own nice value (Pillow decodes
    and encodes without holding the GIL, so the kernel's priority is what counts)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), THUMBNAIL_NICE)


class ProviderLatency:
    """How long each provider's successful calls took lately, in this worker process.

    ``min_remaining()`` gives, per provider, the duration that only the fastest tenth of recent calls
    beat: a job with less time left than that is not started (the call would be paid for and cut off
    at the deadline). Needs ``MIN_SAMPLES`` calls first; until then every job is started.
    """

    SAMPLES = 50
    MIN_SAMPLES = 10
    QUANTILE = 0.1

    def __init__(self) -> None:
        self._durations: dict[str, collections.deque[float]] = {}

    def record(self, provider: str, seconds: float) -> None:
        self._durations.setdefault(provider, collections.deque(maxlen=self.SAMPLES)).append(seconds)

    def min_remaining(self) -> dict[str, float]:
        floors = {}
        for provider, durations in self._durations.items():
            if len(durations) >= self.MIN_SAMPLES:
                ordered = sorted(durations)
                floors[provider] = ordered[int(len(ordered) * self.QUANTILE)]
        return floors


@dataclass
class WorkerStats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    # Claims that ran out of time: finalized as timeout by this worker or, at the deadline, by the waiter.
    timed_out: int = 0
    # Claims taken away before their deadline (re-claimed elsewhere, cancelled by staff) or whose
    # finished outcome could not be written because the job was no longer this claim's.
    lost: int = 0
    # Other workers' jobs this worker's housekeeping handed back to the queue or timed out.
    stale_requeued: int = 0
    stale_timed_out: int = 0
    # Results that arrived after the deadline and were kept (jobs.late_results).
    late_results: int = 0


@dataclass
class RunningJob:
    claim: ClaimedJob
    task: asyncio.Task[None]


@dataclass
class TargetCall:
    """What one provider's call for a job came to (``Worker._call_target``)."""

    target: attempts.ProviderTarget
    outcome: Outcome
    started: float  # time.monotonic() when the call began
    # It failed in a way a fallback slot may mend: a permanent error, or out of attempts' time early.
    may_fall_back: bool = False
    outcome_name: str = ""
    ended: float = field(default_factory=time.monotonic)

    @property
    def record(self) -> dict[str, Any]:
        return attempts.attempt_record(
            self.target,
            outcome=self.outcome_name or str(self.outcome.state),
            failure_reason=str(self.outcome.failure_reason),
            message=self.outcome.failure_message,
            provider_calls=self.outcome.provider_calls,
            seconds=self.ended - self.started,
        )


@dataclass
class LateCall:
    """A provider call running on after its job's deadline, and the job's attempts as finalized."""

    task: asyncio.Task[ProviderResult]
    target: attempts.ProviderTarget
    request: ProviderRequest
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Worker:
    concurrency: int = DEFAULT_CONCURRENCY
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    lease: timedelta = field(default_factory=lambda: timedelta(seconds=settings.WORKER_LEASE_SECONDS))
    poll_seconds: float = field(default_factory=lambda: settings.WORKER_POLL_SECONDS)

    def __post_init__(self) -> None:
        self.stats = WorkerStats()
        self._started_at = timezone.now()
        self._next_heartbeat = 0.0
        self.latency = ProviderLatency()
        self._running: dict[uuid.UUID, RunningJob] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._clients: list[httpx.AsyncClient] = []
        self._next_client = 0
        self._api_keys: dict[str, tuple[float, str]] = {}
        # Jobs whose provider work is done and whose finalize is under way: never cancelled.
        self._finalizing: set[uuid.UUID] = set()
        # Since when (monotonic) this worker's database calls have worked without a failure; None while
        # they fail. Other workers' lapsed leases are only requeued once it has worked for a whole lease:
        # after an outage every live worker must first get the chance to renew its own. Counted from the
        # start too: a worker (re)started during or just after an outage has not seen the others renew.
        self._database_back_since: float | None = time.monotonic()
        # Provider calls running on past their job's deadline for a late result (jobs.late_results).
        self._late_calls: dict[uuid.UUID, LateCall] = {}

    # --- lifecycle -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """First signal: stop claiming, let in-flight jobs finish (late-result calls are given up: the
        booth has had its answer, and a drain must not wait out their grace)."""
        self._stopping = True
        for late in self._late_calls.values():
            late.task.cancel()
        self._wake.set()

    def abort(self) -> None:
        """Second signal: cancel in-flight jobs now (their leases lapse; another worker re-claims)."""
        self._stopping = True
        for running in self._running.values():
            running.task.cancel()
        self._wake.set()

    @contextlib.asynccontextmanager
    async def http_clients(self) -> AsyncIterator[None]:
        """The httpx pools provider calls are spread over, open while the worker runs."""
        # httpx's connection pool does work proportional to its connections on every request, so one
        # pool for hundreds of concurrent calls stalls the event loop for seconds; small pools don't.
        count = max(1, -(-self.concurrency // CONNECTIONS_PER_CLIENT))
        limits = httpx.Limits(
            max_connections=CONNECTIONS_PER_CLIENT * 2, max_keepalive_connections=CONNECTIONS_PER_CLIENT
        )
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(count):
                client = httpx.AsyncClient(limits=limits, follow_redirects=False)
                self._clients.append(await stack.enter_async_context(client))
            try:
                yield
            finally:
                self._clients.clear()

    async def run(self) -> None:
        async with self.http_clients():
            listener = asyncio.create_task(self._listen_forever(), name="worker-listen")
            housekeeping = asyncio.create_task(self._housekeeping_forever(), name="worker-housekeeping")
            try:
                while not self._stopping:
                    # Cleared before claiming: a NOTIFY that lands while the claim runs is not lost.
                    self._wake.clear()
                    if not await self.claim_step():
                        await self._idle()
                await self.drain()
            finally:
                listener.cancel()
                housekeeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
                with contextlib.suppress(asyncio.CancelledError):
                    await housekeeping
                with contextlib.suppress(ServiceError):
                    await db_housekeeping_call(worker_heartbeat_stop, name=self.name)
        await asyncio.to_thread(db_pool_close)
        logger.info("worker %s stopped: %s", self.name, self.stats)

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    async def drain(self) -> None:
        """Wait for every job in flight to finish (finalized, given up or cancelled)."""
        if self._running:
            logger.info("worker %s draining %s in-flight job(s)", self.name, len(self._running))
            await asyncio.gather(
                *(running.task for running in self._running.values()), return_exceptions=True
            )

    # --- steps -----------------------------------------------------------------------------------

    async def claim_step(self) -> bool:
        """Claim as many jobs as there is room for and start them.

        True when the queue may hold more for us right now (we filled every free place); False means
        wait for a NOTIFY, a finished job or the fallback poll before asking again.
        """
        room = self.concurrency - len(self._running)
        if room <= 0 or self._stopping:
            return False
        try:
            claimed = await db_call(
                services.jobs_claim,
                worker=self.name,
                limit=room,
                lease=self.lease,
                min_remaining=self.latency.min_remaining(),
            )
        except DatabaseUnavailable:
            # The loop idles until woken: by the LISTEN connection coming back (the server is up again)
            # or, at the latest, by the fallback poll.
            self._database_failed()
            return False
        self._database_works()
        for item in claimed:
            if item.claim_count > 1:
                # The job's earlier claim lost its lease (its worker died, or stalled past the lease):
                # the provider is called again for it. What a crash costs, counted here.
                logger.warning(
                    "job %s: claim %s, an earlier claim's lease lapsed; calling the provider again",
                    item.id, item.claim_count,
                    extra={"job_id": str(item.id), "slot_id": item.slot_id, "provider": item.provider},
                )  # fmt: skip
            stale = self._running.get(item.id)
            if stale is not None:
                # Our own earlier claim of this job lapsed (this loop stalled past the lease) and we
                # claimed it again: the old attempt must stop calling the provider.
                stale.task.cancel()
                self.stats.lost += 1
            self.stats.claimed += 1
            task = asyncio.create_task(self.process(item), name=f"job-{item.id}")
            self._running[item.id] = RunningJob(claim=item, task=task)
            task.add_done_callback(functools.partial(self._job_done, item.id))
        return len(claimed) == room

    def _job_done(self, job_id: uuid.UUID, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("job %s: its task failed", job_id, exc_info=error, extra={"job_id": str(job_id)})
        running = self._running.get(job_id)
        if running is None or running.task is not task:
            return  # a stale claim's task: the job's current claim keeps its place
        was_full = len(self._running) >= self.concurrency
        del self._running[job_id]
        if was_full:
            self._wake.set()  # a place is free again; pending jobs may be waiting for it

    async def housekeeping_step(self) -> None:
        """Renew our leases (stop jobs that are no longer ours) and recover stale jobs."""
        # Jobs being finalized keep their lease too: a finalize waiting for a database thread must not
        # see its job requeued and claimed again.
        claims = {job_id: running.claim.claim_count for job_id, running in self._running.items()}
        if claims:
            still_ours = await db_housekeeping_call(
                services.jobs_renew_leases, worker=self.name, claims=claims, lease=self.lease
            )
            self._database_works()
            now = timezone.now()
            for job_id in claims.keys() - still_ours:
                running = self._running.get(job_id)
                if running is None or job_id in self._finalizing or job_id in self._late_calls:
                    continue  # (a late call runs on after its job's timeout: jobs.late_results)
                # Finalized, cancelled or re-claimed elsewhere: stop calling the provider.
                running.task.cancel()
                if now >= running.claim.expires_at:
                    self.stats.timed_out += 1  # the waiter or cleanup wrote the timeout at the deadline
                else:
                    self.stats.lost += 1
        if time.monotonic() >= self._next_heartbeat:
            self._next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
            await db_housekeeping_call(
                worker_heartbeat_beat,
                name=self.name,
                started_at=self._started_at,
                jobs_in_flight=len(self._running),
            )
        requeued, timed_out = await db_housekeeping_call(
            services.jobs_recover_stale, requeue=self._may_requeue_others()
        )
        self._database_works()
        if requeued:
            self._wake.set()
        self.stats.stale_requeued += requeued
        self.stats.stale_timed_out += timed_out

    def _database_failed(self) -> None:
        self._database_back_since = None

    def _database_works(self) -> None:
        if self._database_back_since is None:
            self._database_back_since = time.monotonic()

    def _may_requeue_others(self) -> bool:
        """Whether a lapsed lease now means a dead worker, not one that could not reach the database."""
        back_since = self._database_back_since
        return back_since is not None and time.monotonic() - back_since >= self.lease.total_seconds()

    # --- one job ---------------------------------------------------------------------------------

    async def process(self, claimed: ClaimedJob) -> None:
        """Run one claimed job to its end: provider call, then finalize (or stop if cancelled)."""
        # The input's preview for staff, made while the provider works (the photo is deleted at finalize).
        input_thumbnail = self._input_thumbnail_start(claimed)
        try:
            outcome = await self._run_provider(claimed)
            if outcome.state == JobState.TIMEOUT:
                await _wait_until(claimed.expires_at)
        except asyncio.CancelledError:
            logger.info("job %s: stopped (no longer this claim's, or the worker is aborting)", claimed.id)
            _thumbnail_discard(input_thumbnail)
            self._drop_late_call(claimed.id)
            raise
        except DatabaseUnavailable:
            # The adapter needed the database (a key, a public link) while it was down: the job goes
            # back to the queue once its lease lapses (or times out at its deadline), not failed.
            logger.warning(
                "job %s: database unavailable during processing; left to be claimed again", claimed.id,
                extra={"job_id": str(claimed.id), "slot_id": claimed.slot_id},
            )  # fmt: skip
            _thumbnail_discard(input_thumbnail)
            self._drop_late_call(claimed.id)
            return
        except Exception:
            logger.exception(
                "job %s: internal error",
                claimed.id,
                extra={"job_id": str(claimed.id), "slot_id": claimed.slot_id},
            )
            self._drop_late_call(claimed.id)
            outcome = Outcome(
                state=JobState.FAILED,
                failure_reason=FailureReason.INTERNAL_ERROR,
                failure_message="Internal error while processing.",
            )
        if input_thumbnail is not None and input_thumbnail.done():
            # Made while the provider worked (the usual case): the finalize records it.
            outcome = dataclasses.replace(outcome, input_thumbnail_path=_thumbnail_made(input_thumbnail))
            input_thumbnail = None
        try:
            await self._finalize(claimed, outcome, late_input_thumbnail=input_thumbnail)
        except BaseException:
            self._drop_late_call(claimed.id)
            raise
        if outcome.state == JobState.TIMEOUT and outcome.attempts:
            # The waiter usually writes the timeout first, without the attempts: add them.
            await self._record_attempts(claimed, outcome.attempts, replace=False)
        if (late := self._late_calls.get(claimed.id)) is not None:
            if self._stopping:
                late.task.cancel()  # stopping: no new waits for late results
            await self._keep_late_result(claimed, late)

    def _drop_late_call(self, job_id: uuid.UUID) -> None:
        """Give up the job's call running on for a late result, if it has one (its mark is released
        after the grace: ``jobs.late_results.open_calls_release_stale``)."""
        if (late := self._late_calls.pop(job_id, None)) is not None:
            late.task.cancel()

    def _input_thumbnail_start(self, claimed: ClaimedJob) -> asyncio.Future[str] | None:
        if not claimed.input_path:
            return None
        return asyncio.get_running_loop().run_in_executor(
            thumbnail_executor(),
            functools.partial(
                thumbnails.thumbnail_store_from_file,
                job_id=claimed.id,
                kind=thumbnails.INPUT,
                source_path=claimed.input_path,
            ),
        )

    async def _run_provider(self, claimed: ClaimedJob) -> Outcome:
        """The slot's provider, then, once, its fallback slot's when the first failed with time left.

        Which calls and within which times: ``jobs.attempts``. A call still running at the deadline when
        the studio keeps late results is handed to ``_keep_late_result`` (after the timeout is written).
        """
        primary = attempts.primary_target(claimed)
        fallback = attempts.fallback_target(claimed)
        fallback_latency = self.latency.min_remaining().get(fallback.provider) if fallback else None
        reserve = None
        if fallback is not None:
            window = (claimed.expires_at - (claimed.created_at or claimed.expires_at)).total_seconds()
            reserve = attempts.fallback_reserve_seconds(
                window_seconds=window, fallback_latency=fallback_latency
            )
        first = await self._call_target(claimed, primary, reserve_seconds=reserve)
        calls = [first]
        skipped: list[dict[str, Any]] = []
        left = remaining_seconds(deadline=claimed.expires_at, now=timezone.now())
        if (
            fallback is not None
            and first.may_fall_back
            and attempts.fallback_allowed(remaining_seconds=left, fallback_latency=fallback_latency)
            and (problems := attempts.target_problems(fallback))
        ):
            # Edited into an incomplete configuration after it was chosen: not called (no internal error).
            detail = "; ".join(f"{name}: {message}" for name, message in problems.items())
            skipped.append(
                attempts.attempt_record(
                    fallback, outcome="skipped", message=f"incomplete configuration ({detail})"
                )
            )
            fallback = None
        if (
            fallback is not None
            and first.may_fall_back
            and attempts.fallback_allowed(remaining_seconds=left, fallback_latency=fallback_latency)
        ):
            logger.info(
                "job %s: %s failed (%s); trying the fallback slot %s (%s)",
                claimed.id, primary.provider, first.outcome.failure_message, fallback.slot_id, fallback.provider,
                extra={"job_id": str(claimed.id), "slot_id": claimed.slot_id, "provider": fallback.provider},
            )  # fmt: skip
            # The fallback's call counts against its own provider's cap while it runs.
            await self._open_call(claimed, fallback.provider)
            second = await self._call_target(claimed, fallback, reserve_seconds=None)
            calls.append(second)
            if claimed.id not in self._late_calls:
                await self._open_call(claimed, "")
        records = [call.record for call in calls] + skipped
        if (late := self._late_calls.get(claimed.id)) is not None:
            late.records = records
        last = calls[-1].outcome
        message = last.failure_message
        if len(calls) > 1 and last.state != JobState.SUCCEEDED:
            message = f"{first.outcome.failure_message}; fallback {calls[-1].target.slot_id}: {message}"
        return dataclasses.replace(
            last,
            failure_message=message,
            provider_calls=sum(call.outcome.provider_calls for call in calls),
            attempts=records,
            answered_by=calls[-1].target.slot_id if last.state == JobState.SUCCEEDED else "",
        )

    async def _call_target(
        self, claimed: ClaimedJob, target: attempts.ProviderTarget, *, reserve_seconds: float | None
    ) -> TargetCall:
        """One provider's call for the job, up to the deadline (a reserve for the fallback ends its
        attempts earlier); at the deadline it is handed to the late-result watch or stopped."""
        provider = get_provider(target.provider)
        if claimed.input_size_bytes and all(template.get("size_bytes") for template in target.templates):
            photo, templates = _stored_images(claimed, target.templates)  # sizes known: no file is touched
        else:
            photo, templates = await asyncio.to_thread(_stored_images, claimed, target.templates)
        times = attempts.call_times(
            expires_at=claimed.expires_at,
            late_grace_seconds=claimed.late_result_grace_seconds,
            reserve_seconds=reserve_seconds,
        )
        request = ProviderRequest(
            job_id=str(claimed.id),
            operation=target.operation or provider.default_operation,
            settings=target.request_settings(),
            photo=photo,
            templates=templates,
            deadline=times.deadline,
            attempt_deadline=times.attempt_deadline,
            api_key=await self._api_key(target.provider),
            hooks=JobHooks(claimed.id),
        )
        started = time.monotonic()
        call = asyncio.create_task(self._provider_call(provider, request), name=f"call-{claimed.id}")
        try:
            done, _pending = await asyncio.wait(
                {call}, timeout=max(remaining_seconds(deadline=claimed.expires_at, now=timezone.now()), 0.001)
            )
        except asyncio.CancelledError:
            call.cancel()
            raise
        timed_out = Outcome(
            state=JobState.TIMEOUT,
            failure_reason=FailureReason.PROVIDER_TIMEOUT,
            failure_message="No result within the sync window.",
            provider_calls=request.attempts,
        )
        if not done:
            if claimed.late_result_grace_seconds > 0:
                # The booth gets its 504 at the deadline; the call runs on for a late result, counted
                # against its provider's cap until it ends (jobs.late_results).
                try:
                    marked = await self._open_call(claimed, target.provider)
                except BaseException:
                    call.cancel()
                    raise
                if marked:
                    self._late_calls[claimed.id] = LateCall(task=call, target=target, request=request)
                    return TargetCall(target, timed_out, started, outcome_name=LATE_PENDING)
            call.cancel()  # (a call whose place under the cap could not be recorded is not kept either)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call
            return TargetCall(target, timed_out, started)
        try:
            result = call.result()
        except (ProviderDeadlineExceeded, TimeoutError):
            # Out of time between attempts: early only when retryable failures used up the attempts' time.
            early = timezone.now() < claimed.expires_at
            return TargetCall(target, timed_out, started, may_fall_back=early)
        except ProviderError as error:
            logger.info(
                "job %s: provider failed permanently: %s", claimed.id, error.message,
                extra={"job_id": str(claimed.id), "slot_id": target.slot_id, "provider": target.provider},
            )  # fmt: skip
            failed = Outcome(
                state=JobState.FAILED,
                failure_reason=FailureReason.PROVIDER_ERROR,
                failure_message=error.message,
                provider_calls=request.attempts,
            )
            return TargetCall(target, failed, started, may_fall_back=True)
        self.latency.record(target.provider, time.monotonic() - started)
        token = share_token_new()
        try:
            stored = await self._store_image(
                claimed, result.image, token, check=not provider.results_are_trusted
            )
        except (UnreadableImage, FarTooManyPixels) as error:
            logger.info(
                "job %s: the provider's result is not a usable image: %s", claimed.id, error,
                extra={"job_id": str(claimed.id), "slot_id": target.slot_id, "provider": target.provider},
            )  # fmt: skip
            unusable = Outcome(
                state=JobState.FAILED,
                failure_reason=FailureReason.PROVIDER_ERROR,
                failure_message=_unusable_result_message(error),
                provider_calls=result.attempts,
            )
            return TargetCall(target, unusable, started, may_fall_back=True)
        except OSError as error:
            # A full disk: our failure, not the provider's. The booth gets 503 with this message (see
            # jobs.api); the partial file is already removed.
            refusal = storage.not_stored(error, "the result")
            not_stored = Outcome(
                state=JobState.FAILED,
                failure_reason=refusal.reason,
                failure_message=refusal.message,
                provider_calls=result.attempts,
            )
            return TargetCall(target, not_stored, started)
        succeeded = Outcome(
            state=JobState.SUCCEEDED,
            result=stored,
            provider_calls=result.attempts,
            extra={"attempts": result.attempts},
            share_token=token,
        )
        return TargetCall(target, succeeded, started)

    async def _provider_call(self, provider: Provider, request: ProviderRequest) -> ProviderResult:
        """The adapter's work, cut at the call's deadline (the job's, or its late-result grace)."""
        return await asyncio.wait_for(
            provider.process(request, self._client()), timeout=max(request.remaining(), 0.001)
        )

    async def _store_image(
        self, claimed: ClaimedJob, image: ProviderImage, share_token: str, *, check: bool
    ) -> StoredResult:
        """The provider's image, checked (``check``), with the share page's QR code when the slot asks
        for it, under results/. Raises as ``_store_result`` does."""
        if claimed.share_qr == SHARE_QR_OFF:
            return await asyncio.to_thread(_store_result, claimed.id, image, check=check)
        return await asyncio.to_thread(_stamp_and_store_result, claimed, image, share_token, check=check)

    async def _keep_late_result(self, claimed: ClaimedJob, late: LateCall) -> None:
        """After the timeout is written: wait for the call running on (up to the grace) and keep its image.

        The job stays ``timeout``; the image becomes downloadable (``/public/results/<job_id>``, its share
        page) and shows in the slot's gallery as late. The call's cap place is released either way.
        """
        fields = {"job_id": str(claimed.id), "slot_id": claimed.slot_id, "provider": late.target.provider}
        try:
            try:
                result = await late.task
                token = share_token_new()
                trusted = get_provider(late.target.provider).results_are_trusted
                stored = await self._store_image(claimed, result.image, token, check=not trusted)
            except (Exception, asyncio.CancelledError) as error:
                if isinstance(error, asyncio.CancelledError) and _being_cancelled():
                    raise  # this job's own task is being stopped (abort): cleanup releases the place
                expected = (ProviderDeadlineExceeded, TimeoutError, ProviderError, asyncio.CancelledError)
                logger.log(
                    logging.INFO if isinstance(error, expected) else logging.WARNING,
                    "job %s: no late result (%s)", claimed.id, error.__class__.__name__, extra=fields,
                )  # fmt: skip
                await self._open_call(claimed, "")
                await self._record_attempts(claimed, _late_outcome(late.records, "timeout"), replace=True)
                return
            records = _late_outcome(late.records, "late", provider_calls=result.attempts)
            try:
                recorded = await db_call(
                    late_results.job_late_result_record,
                    job_id=claimed.id,
                    claimed_by=self.name,
                    claim_count=claimed.claim_count,
                    result=stored,
                    share_token=token,
                    attempts=records,
                    answered_by=late.target.slot_id,
                )
            except DatabaseUnavailable:
                logger.warning("job %s: database unavailable; the late result was not kept", claimed.id)
                recorded = False
            if not recorded:
                await asyncio.to_thread(_delete_files, [stored.path])
                await self._open_call(claimed, "")
                return
            self.stats.late_results += 1
            logger.info("job %s: late result kept", claimed.id, extra=fields)
            await self._record_result_thumbnail(claimed, stored)
        finally:
            self._late_calls.pop(claimed.id, None)
            if not late.task.done():
                late.task.cancel()

    async def _open_call(self, claimed: ClaimedJob, provider: str) -> bool:
        """Mark (``provider``) or clear ("") the call this claim holds open (``jobs.late_results``); False
        when the database is unreachable (a mark not cleared is released after the job's grace)."""
        try:
            await db_call(
                late_results.job_open_call_set,
                job_id=claimed.id,
                claimed_by=self.name,
                claim_count=claimed.claim_count,
                provider=provider,
            )
        except DatabaseUnavailable:
            logger.warning("job %s: database unavailable; open provider call not recorded", claimed.id)
            return False
        return True

    async def _record_attempts(
        self, claimed: ClaimedJob, records: list[dict[str, Any]], *, replace: bool
    ) -> None:
        """``job_attempts_record`` for this claim; skipped while the database is unreachable (the
        attempts are bookkeeping for staff: the job's outcome does not depend on them)."""
        try:
            await db_call(
                late_results.job_attempts_record,
                job_id=claimed.id,
                claimed_by=self.name,
                claim_count=claimed.claim_count,
                attempts=records,
                replace=replace,
            )
        except DatabaseUnavailable:
            logger.warning("job %s: database unavailable; its attempts were not recorded", claimed.id)

    def _client(self) -> httpx.AsyncClient:
        client = self._clients[self._next_client % len(self._clients)]
        self._next_client += 1
        return client

    async def _api_key(self, provider: str) -> str:
        """The provider's key, re-read from the database at most every few seconds (keys rarely change)."""
        cached = self._api_keys.get(provider)
        now = time.monotonic()
        if cached is None or now - cached[0] > API_KEY_CACHE_SECONDS:
            try:
                cached = (now, await db_call(provider_key_get, provider=provider))
            except DatabaseUnavailable:
                if cached is None:
                    raise
                return cached[1]  # the database is away for a moment: the last key read still works
            self._api_keys[provider] = cached
        return cached[1]

    async def _finalize(
        self, claimed: ClaimedJob, outcome: Outcome, late_input_thumbnail: asyncio.Future[str] | None = None
    ) -> None:
        # Never cancelled by housekeeping from here, also while a late input thumbnail is recorded.
        self._finalizing.add(claimed.id)
        try:
            won = await self._write_outcome(claimed, outcome, keep_input=late_input_thumbnail is not None)
            logger.info(
                "job %s %s",
                claimed.id,
                outcome.state if won else f"{outcome.state} (lost: written elsewhere)",
                extra=_job_fields(claimed, outcome, won=won),
            )
            if outcome.state == JobState.TIMEOUT:
                # Written only after the deadline: if we did not win, the waiter or cleanup wrote the same.
                self.stats.timed_out += 1
            elif not won:
                self.stats.lost += 1
            elif outcome.state == JobState.SUCCEEDED:
                self.stats.succeeded += 1
            else:
                self.stats.failed += 1
            if not won:
                # Finalized elsewhere or claimed again since: our answer and previews are not the job's.
                _thumbnail_discard(late_input_thumbnail)
                paths = [outcome.input_thumbnail_path]
                if outcome.result is not None:
                    paths += [outcome.result.path, outcome.result.thumbnail_path]
                await asyncio.to_thread(_delete_files, paths)
            else:
                if late_input_thumbnail is not None:
                    await self._record_late_input_thumbnail(claimed, late_input_thumbnail)
                if outcome.result is not None:
                    await self._record_result_thumbnail(claimed, outcome.result)
        finally:
            self._finalizing.discard(claimed.id)

    async def _write_outcome(self, claimed: ClaimedJob, outcome: Outcome, *, keep_input: bool) -> bool:
        """``job_finalize`` for this claim, tried again while the database is unreachable; True when won.

        Gives up (False) once the job's deadline is ``FINALIZE_RETRY_GRACE_SECONDS`` behind: a result
        can no longer land then, and the job is timed out by whoever reaches the database first.
        """
        give_up_at = max(claimed.expires_at, timezone.now()) + timedelta(seconds=FINALIZE_RETRY_GRACE_SECONDS)
        while True:
            try:
                return await db_call(
                    services.job_finalize,
                    job_id=claimed.id,
                    outcome=outcome,
                    claimed_by=self.name,
                    claim_count=claimed.claim_count,
                    keep_input=keep_input,
                )
            except DatabaseUnavailable:
                if timezone.now() >= give_up_at:
                    logger.warning("job %s: database unavailable; its outcome was not written", claimed.id)
                    return False
                await asyncio.sleep(FINALIZE_RETRY_SECONDS)

    async def _record_result_thumbnail(self, claimed: ClaimedJob, result: StoredResult) -> None:
        """After the booth has its answer: the result's staff preview, made at low priority, recorded once."""
        path = await asyncio.get_running_loop().run_in_executor(
            thumbnail_executor(),
            functools.partial(
                thumbnails.thumbnail_store_from_file,
                job_id=claimed.id,
                kind=thumbnails.RESULT,
                source_path=result.path,
            ),
        )
        try:
            recorded = bool(path) and await db_call(
                services.job_result_thumbnail_record, job_id=claimed.id, path=path
            )
        except DatabaseUnavailable:
            recorded = False  # the result stays downloadable; staff see it without a preview
        if path and not recorded:
            await asyncio.to_thread(storage.delete, path)

    async def _record_late_input_thumbnail(self, claimed: ClaimedJob, future: asyncio.Future[str]) -> None:
        """After a finalize that kept the input: wait for its thumbnail, record it, release the input."""
        try:
            path = await asyncio.wait_for(asyncio.shield(future), timeout=LATE_THUMBNAIL_WAIT_SECONDS)
        except TimeoutError:
            logger.info("job %s: input thumbnail not made in time; the job keeps none", claimed.id)
            _thumbnail_discard(future)
            path = ""
        except asyncio.CancelledError:
            _thumbnail_discard(future)  # the input is left to cleanup (its job is final)
            raise
        try:
            recorded = await db_call(
                services.job_input_thumbnail_record,
                job_id=claimed.id,
                claimed_by=self.name,
                claim_count=claimed.claim_count,
                path=path,
            )
        except DatabaseUnavailable:
            recorded = False  # the kept input is released by cleanup (its job is final)
        if path and not recorded:
            await asyncio.to_thread(storage.delete, path)

    # --- wake-ups ----------------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        async def woken_on_connect() -> None:
            self._wake.set()  # jobs may have arrived while nobody listened

        await listen_forever(
            services.CHANNEL_JOB_CREATED, lambda _payload: self._wake.set(), on_connected=woken_on_connect
        )

    async def _housekeeping_forever(self) -> None:
        interval = max(0.2, self.lease.total_seconds() * LEASE_RENEW_FRACTION)
        while True:
            await asyncio.sleep(min(interval, 1.0))
            try:
                await self.housekeeping_step()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if isinstance(error, DatabaseUnavailable):
                    self._database_failed()
                logger.warning("worker housekeeping failed: %s", error.__class__.__name__)


def _late_outcome(
    records: list[dict[str, Any]], outcome: str, provider_calls: int | None = None
) -> list[dict[str, Any]]:
    """The job's attempts with the call that ran on past the deadline ("late_pending") given its end."""
    ended = []
    for record in records:
        if record.get("outcome") == LATE_PENDING:
            record = {**record, "outcome": outcome}
            if provider_calls is not None:
                record["provider_calls"] = provider_calls
        ended.append(record)
    return ended


def _being_cancelled() -> bool:
    """Whether the running task itself has been asked to stop (not merely a task it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _wait_until(deadline: datetime) -> None:
    """Sleep until the wall clock reaches ``deadline``.

    Adapters give up a little early when another attempt could not finish in time, but a timeout may
    only be written once the deadline has passed (``job_finalize``); meanwhile the job keeps its lease.
    """
    while (left := remaining_seconds(deadline=deadline, now=timezone.now())) > 0:
        await asyncio.sleep(min(left, DEADLINE_WAIT_SLICE_SECONDS))


class JobHooks:
    """The platform services an adapter may use for one job (see ``providers.base.ProviderHooks``)."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id

    async def public_link(self, *, path: str, mime_type: str, size_bytes: int) -> str:
        return await db_call(
            public_link_create, job_id=self.job_id, path=path, mime_type=mime_type, size_bytes=size_bytes
        )

    async def record_reference(self, reference: str) -> None:
        await db_call(services.job_set_provider_reference, job_id=self.job_id, reference=reference)


def _stored_images(
    claimed: ClaimedJob, templates: list[dict[str, str]] | None = None
) -> tuple[StoredImage, list[TemplateImage]]:
    """The job's photo and templates (its slot's, or ``templates``: its fallback slot's) as files of known size.

    Sizes come from the database rows (the input's media row, the templates' snapshot); a file is
    stat-ed only when its row has none (a job queued before sizes were recorded). Blocking only then.
    """
    photo = StoredImage(
        path=claimed.input_path,
        mime_type=claimed.input_mime_type,
        size_bytes=claimed.input_size_bytes or storage.size(claimed.input_path),
    )
    images = [
        TemplateImage(
            role=template.get("role", ""),
            name=template.get("name", ""),
            image=StoredImage(
                path=template["path"],
                mime_type=template.get("mime_type", "image/png"),
                size_bytes=int(template.get("size_bytes") or 0) or storage.size(template["path"]),
            ),
        )
        for template in (claimed.templates if templates is None else templates)
    ]
    return photo, images


def _store_result(job_id: uuid.UUID, image: ProviderImage, *, check: bool = True) -> StoredResult:
    """Check that the provider's image decodes whole (``check``), then store it under results/ in the
    media store (blocking: decodes, writes and hashes). Its staff preview is made after the finalize
    (``Worker._record_result_thumbnail``): the booth never waits for it.

    Raises ``UnreadableImage`` / ``FarTooManyPixels`` for a result no booth could print (nothing is
    written), ``OSError`` when the disk is full or S3 fails (``StoreUnavailable``; nothing is left).
    """
    if check:
        mime_type = decoded_image_type(image.data, max_pixels=settings.INGEST_MAX_PIXELS)
    else:
        mime_type = sniff_image_type(image.data) or image.mime_type
    path = storage.result_path(job_id, mime_type)
    checksum = storage.write_new(path, image.data)
    return StoredResult(path=path, mime_type=mime_type, size_bytes=len(image.data), sha256=checksum)


def _unusable_result_message(error: UnreadableImage | FarTooManyPixels) -> str:
    if isinstance(error, FarTooManyPixels):
        return f"The provider's result has far too many pixels ({error}); it was not stored."
    return (
        "The provider's result is not a usable image (truncated, damaged or not an image); it was not stored."
    )


def _stamp_and_store_result(
    claimed: ClaimedJob, image: ProviderImage, share_token: str, *, check: bool
) -> StoredResult:
    """``_store_result`` with the share page's QR code stamped on (blocking). The provider's image is
    checked before it is decoded for the stamp, so a bomb or a broken image never gets that far."""
    if check:
        decoded_image_type(image.data, max_pixels=settings.INGEST_MAX_PIXELS)
    stamped = share_qr_stamp(image, token=share_token, corner=claimed.share_qr, job_id=claimed.id)
    return _store_result(claimed.id, stamped, check=False)


def _job_fields(claimed: ClaimedJob, outcome: Outcome, *, won: bool) -> dict[str, Any]:
    """What a job's log line carries as fields (JSON logs): ids, provider, outcome and durations."""
    now = timezone.now()
    return {
        "job_id": str(claimed.id),
        "slot_id": claimed.slot_id,
        "provider": claimed.provider,
        "state": str(outcome.state),
        "failure_reason": outcome.failure_reason,
        "provider_calls": outcome.provider_calls,
        "written": won,
        "duration_ms": int((now - claimed.created_at).total_seconds() * 1000) if claimed.created_at else None,
    }


def _thumbnail_made(future: asyncio.Future[str]) -> str:
    """The path a finished thumbnail future made ("" when none could be made)."""
    if future.cancelled() or future.exception() is not None:
        return ""
    return future.result()


def _thumbnail_discard(future: asyncio.Future[str] | None) -> None:
    """Remove the thumbnail ``future`` makes (now or once made): its job will not record it."""
    if future is None:
        return

    def remove(done: asyncio.Future[str]) -> None:
        if path := _thumbnail_made(done):
            # On the thumbnail pool, never on the event loop.
            asyncio.get_running_loop().run_in_executor(thumbnail_executor(), storage.delete, path)

    future.add_done_callback(remove)


def _delete_files(paths: list[str]) -> None:
    for path in paths:
        storage.delete(path)
