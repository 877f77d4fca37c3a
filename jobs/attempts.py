"""Which provider calls a job makes, and within which times: its slot's, then once its fallback slot's.

Plain functions and values over a claimed job (``jobs.services.ClaimedJob``); the worker
(``jobs.worker``) makes the calls.

- The slot's own provider is called first. When the slot names a fallback slot, new attempts of the
  first provider stop ``fallback_reserve_seconds`` before the deadline, so a provider that keeps
  answering NO_IMAGE or retryable errors leaves the fallback time to answer.
- When the first provider failed (permanently, or out of attempts) and at least ``FALLBACK_MIN_SECONDS``
  remain (and the fallback provider's usual latency, once known), the same photo goes through the
  fallback slot's provider, operation, settings and templates, once: a fallback's fallback is never
  followed.
- When the studio keeps late results, the call in flight at the deadline runs on for the grace (its
  ``deadline``) while no new attempt starts after the job's deadline (its ``attempt_deadline``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobs.prompts import PROMPT_SETTING
from jobs.services import ClaimedJob
from providers.registry import validate_slot_configuration

# The least time left for which a fallback call is worth starting.
FALLBACK_MIN_SECONDS = 1.0
# Without a measured latency of the fallback provider, the share of the window kept for it.
FALLBACK_RESERVE_FRACTION = 0.25


@dataclass(frozen=True)
class ProviderTarget:
    """One provider call plan: whose slot, which provider, with what."""

    slot_id: str
    provider: str
    operation: str
    settings: dict[str, Any]
    templates: list[dict[str, str]]
    prompt_sent: str
    is_fallback: bool = False

    def request_settings(self) -> dict[str, Any]:
        """The settings the adapter gets: the prompt with the booth's fields filled in."""
        settings = dict(self.settings)
        if self.prompt_sent and PROMPT_SETTING in settings:
            settings[PROMPT_SETTING] = self.prompt_sent
        return settings


def primary_target(claimed: ClaimedJob) -> ProviderTarget:
    return ProviderTarget(
        slot_id=claimed.slot_id,
        provider=claimed.provider,
        operation=claimed.operation,
        settings=dict(claimed.provider_settings),
        templates=list(claimed.templates),
        prompt_sent=claimed.prompt_sent,
    )


def fallback_target(claimed: ClaimedJob) -> ProviderTarget | None:
    """The fallback slot's call as snapshotted at ingest; None when the slot names none."""
    fallback = claimed.fallback
    if not fallback or not fallback.get("provider"):
        return None
    return ProviderTarget(
        slot_id=str(fallback.get("slot_id", "")),
        provider=str(fallback["provider"]),
        operation=str(fallback.get("operation") or ""),
        settings=dict(fallback.get("provider_settings") or {}),
        templates=list(fallback.get("templates") or []),
        prompt_sent=str(fallback.get("prompt_sent") or ""),
        is_fallback=True,
    )


def target_problems(target: ProviderTarget) -> dict[str, str]:
    """Why ``target``'s provider would refuse its configuration ({} when it can be called).

    A fallback slot need not be active, so nothing else made sure its settings are complete.
    """
    return validate_slot_configuration(
        provider=target.provider,
        operation=target.operation,
        settings=target.settings,
        template_roles=[template.get("role", "") for template in target.templates],
    )


def fallback_reserve_seconds(*, window_seconds: float, fallback_latency: float | None) -> float:
    """How long before the deadline the first provider stops starting attempts, for the fallback."""
    if fallback_latency is not None:
        return max(FALLBACK_MIN_SECONDS, fallback_latency)
    return max(FALLBACK_MIN_SECONDS, window_seconds * FALLBACK_RESERVE_FRACTION)


def fallback_allowed(*, remaining_seconds: float, fallback_latency: float | None) -> bool:
    """Whether the time left lets the fallback provider answer."""
    return remaining_seconds >= max(FALLBACK_MIN_SECONDS, fallback_latency or 0.0)


@dataclass(frozen=True)
class CallTimes:
    """When a call must be over (``deadline``) and when its last attempt may start (``attempt_deadline``)."""

    deadline: datetime
    attempt_deadline: datetime


def call_times(
    *, expires_at: datetime, late_grace_seconds: int, reserve_seconds: float | None = None
) -> CallTimes:
    """The times of one call: late results let it run on past ``expires_at``; a reserve ends attempts earlier."""
    attempt_deadline = expires_at - timedelta(seconds=reserve_seconds or 0)
    return CallTimes(
        deadline=expires_at + timedelta(seconds=max(0, late_grace_seconds)),
        attempt_deadline=attempt_deadline,
    )


def attempt_record(
    target: ProviderTarget,
    *,
    outcome: str,
    failure_reason: str = "",
    message: str = "",
    provider_calls: int = 0,
    seconds: float | None = None,
) -> dict[str, Any]:
    """One entry of ``Job.attempts``: whose call, what it came to, how many provider requests it took."""
    return {
        "slot_id": target.slot_id,
        "provider": target.provider,
        "operation": target.operation,
        "fallback": target.is_fallback,
        "prompt": target.prompt_sent,
        "outcome": outcome,
        "failure_reason": failure_reason,
        "message": message[:300],
        "provider_calls": provider_calls,
        "seconds": round(seconds, 3) if seconds is not None else None,
    }
