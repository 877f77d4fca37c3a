"""The provider interface every adapter implements, and the deadline discipline they share.

An adapter turns one ``ProviderRequest`` (stored photo, templates, slot settings, deadline) into one
``ProviderResult`` or raises a ``ProviderError``. Every HTTP call gets the time left until the job's
deadline as its timeout; retries happen only for retryable failures and only while time remains.
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, ClassVar, Protocol, TypeVar

import httpx
from django.utils import timezone

from media import storage
from photochanger.deadlines import remaining_seconds

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Below this much time left a new provider attempt cannot finish; give up and let the job time out.
MIN_ATTEMPT_SECONDS = 0.25
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BASE_BACKOFF = 0.5


@dataclass(frozen=True)
class ProviderImage:
    """An image in memory: what a provider answered."""

    data: bytes
    mime_type: str


@dataclass(frozen=True)
class StoredImage:
    """An image in the media store (the job's photo, a template), read only when and as an adapter needs it.

    Adapters stream it (``providers.bodies``), hand out a link to it (Turbotext) or decode it (local);
    the methods block on the disk or the network, so async code calls them in a thread.
    """

    path: str  # a name in the media store (media.storage)
    mime_type: str
    size_bytes: int

    def open(self) -> BinaryIO:
        """The file as a front-to-back stream (on S3, as it downloads); not seekable on S3."""
        return storage.open_stream(self.path)


@dataclass(frozen=True)
class TemplateImage:
    role: str
    name: str
    image: StoredImage


class ProviderHooks(Protocol):
    """What an adapter may ask of the platform while it works on a job (implemented by the worker)."""

    async def public_link(self, *, path: str, mime_type: str, size_bytes: int) -> str:
        """A temporary public URL to a file in the media store, valid while the job lives."""

    async def record_reference(self, reference: str) -> None:
        """Store the provider's own id for the job (``provider_job_reference``)."""


@dataclass
class ProviderRequest:
    job_id: str
    operation: str
    settings: dict[str, Any]
    photo: StoredImage
    templates: list[TemplateImage]
    deadline: datetime
    api_key: str = ""
    hooks: ProviderHooks | None = None
    attempts: int = 0
    # No new attempt starts after this (default: ``deadline``). The worker sets it earlier than
    # ``deadline`` when a call in flight may run on past the job's deadline for a late result, or when
    # a fallback slot needs the rest of the window.
    attempt_deadline: datetime | None = None

    def remaining(self) -> float:
        """Seconds left for the call in flight (its timeout)."""
        return remaining_seconds(deadline=self.deadline, now=timezone.now())

    def attempt_remaining(self) -> float:
        """Seconds left to start another attempt."""
        deadline = (
            self.deadline if self.attempt_deadline is None else min(self.deadline, self.attempt_deadline)
        )
        return remaining_seconds(deadline=deadline, now=timezone.now())


@dataclass(frozen=True)
class ProviderResult:
    image: ProviderImage
    attempts: int = 1


class ProviderError(Exception):
    """A provider failure. ``retryable`` ones are retried while the deadline allows."""

    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code


class ProviderDeadlineExceeded(Exception):
    """The job's deadline arrived before the provider produced a result."""


class Provider(ABC):
    kind: ClassVar[str]
    default_operation: ClassVar[str]
    # Results made by our own code (the local provider) are stored as they are; anyone else's are decoded
    # whole first (jobs.worker), so a truncated or fake "image" is never stored or served.
    results_are_trusted: ClassVar[bool] = False

    def validate_settings(
        self, operation: str, settings: dict[str, Any], template_roles: list[str]
    ) -> dict[str, str]:
        """Field-level problems that would make the provider refuse this configuration ({} = valid).

        The JSON Schema of the provider/operation first, then rules a schema cannot say well. Only the
        ``templates`` problem depends on ``template_roles``: a form that judges the settings without the
        bindings (the slot admin) gets the same answer for every other field.
        """
        from providers.schemas import validate_against_schema

        problems = validate_against_schema(
            provider=self.kind, operation=operation, values=settings, template_roles=template_roles
        )
        if problems.keys() <= {"templates"}:
            problems = {**self.extra_problems(operation, settings, template_roles), **problems}
        return problems

    def extra_problems(
        self, operation: str, settings: dict[str, Any], template_roles: list[str]
    ) -> dict[str, str]:
        return {}

    def retry_options(self, settings: dict[str, Any]) -> dict[str, Any]:
        policy = settings.get("retry_policy") or {}
        return {
            "max_attempts": int(policy.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
            "base_backoff": float(policy.get("base_backoff_seconds", DEFAULT_BASE_BACKOFF)),
        }

    @abstractmethod
    async def process(self, request: ProviderRequest, client: httpx.AsyncClient) -> ProviderResult:
        """Produce the processed image before ``request.deadline`` or raise."""


async def with_retries(
    request: ProviderRequest,
    attempt: Callable[[float], Awaitable[T]],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base_backoff: float = DEFAULT_BASE_BACKOFF,
    max_backoff: float = 4.0,
) -> T:
    """Call ``attempt(timeout)`` until it succeeds, a permanent error occurs, or the deadline arrives.

    ``timeout`` is always the time left; backoff (with jitter) never sleeps past the deadline. When the
    next backoff would not fit, ``ProviderDeadlineExceeded`` comes up to ``max_backoff`` seconds early:
    the caller (the worker) writes the timeout once the deadline has passed.
    """
    last_error: ProviderError | None = None
    for number in range(1, max_attempts + 1):
        if request.attempt_remaining() < MIN_ATTEMPT_SECONDS:
            break
        request.attempts = number
        try:
            return await attempt(request.remaining())
        except httpx.TimeoutException as error:
            if request.remaining() < MIN_ATTEMPT_SECONDS:
                raise ProviderDeadlineExceeded("provider did not answer before the deadline") from error
            last_error = ProviderError("provider timed out", retryable=True)
        except httpx.TransportError as error:
            last_error = ProviderError(f"provider unreachable ({error.__class__.__name__})", retryable=True)
        except ProviderError as error:
            if not error.retryable:
                raise
            last_error = error
        logger.info(
            "job %s: retryable provider failure on attempt %s: %s", request.job_id, number, last_error
        )
        if number == max_attempts:
            raise ProviderError(f"gave up after {number} attempts: {last_error.message}", retryable=False)
        pause = min(max_backoff, base_backoff * 2 ** (number - 1)) * (0.5 + random.random() / 2)
        if request.attempt_remaining() - pause < MIN_ATTEMPT_SECONDS:
            break  # another attempt could not finish in time
        await asyncio.sleep(pause)
    # Out of time while failures were still retryable: the job times out (the booth falls back).
    detail = f" (last failure: {last_error.message})" if last_error else ""
    raise ProviderDeadlineExceeded(f"no result before the deadline{detail}")
