"""The provider interface every adapter implements, and the deadline discipline they share.

An adapter turns one ``ProviderRequest`` (photo, templates, slot settings, deadline) into one
``ProviderResult`` or raises a ``ProviderError``. Every HTTP call gets the time left until the job's
deadline as its timeout; retries happen only for retryable failures and only while time remains.
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import httpx
from django.utils import timezone

from jobs.deadlines import remaining_seconds

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Below this much time left a new provider attempt cannot finish; give up and let the job time out.
MIN_ATTEMPT_SECONDS = 0.25


@dataclass(frozen=True)
class ProviderImage:
    data: bytes
    mime_type: str


@dataclass(frozen=True)
class TemplateImage:
    role: str
    name: str
    image: ProviderImage


@dataclass
class ProviderRequest:
    job_id: str
    operation: str
    settings: dict[str, Any]
    photo: ProviderImage
    templates: list[TemplateImage]
    deadline: datetime
    api_key: str = ""
    attempts: int = 0
    provider_job_reference: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def remaining(self) -> float:
        return remaining_seconds(deadline=self.deadline, now=timezone.now())


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
    operations: ClassVar[tuple[str, ...]]
    default_operation: ClassVar[str]

    @abstractmethod
    def validate_settings(
        self, operation: str, settings: dict[str, Any], template_roles: list[str]
    ) -> dict[str, str]:
        """Field-level problems that would make the provider refuse this configuration ({} = valid)."""

    @abstractmethod
    async def process(self, request: ProviderRequest, client: httpx.AsyncClient) -> ProviderResult:
        """Produce the processed image before ``request.deadline`` or raise."""


async def with_retries(
    request: ProviderRequest,
    attempt: Callable[[float], Awaitable[T]],
    *,
    max_attempts: int = 8,
    base_backoff: float = 0.5,
    max_backoff: float = 4.0,
) -> T:
    """Call ``attempt(timeout)`` until it succeeds, a permanent error occurs, or the deadline arrives.

    ``timeout`` is always the time left; backoff (with jitter) never sleeps past the deadline.
    """
    last_error: ProviderError | None = None
    for number in range(1, max_attempts + 1):
        if request.remaining() < MIN_ATTEMPT_SECONDS:
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
        if request.remaining() - pause < MIN_ATTEMPT_SECONDS:
            break  # another attempt could not finish in time
        await asyncio.sleep(pause)
    # Out of time while failures were still retryable: the job times out (the booth falls back).
    detail = f" (last failure: {last_error.message})" if last_error else ""
    raise ProviderDeadlineExceeded(f"no result before the deadline{detail}")
