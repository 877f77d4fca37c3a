"""The job state machine: states, allowed transitions, and the one check every move goes through."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class JobState(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    TIMEOUT = "timeout", _("Timed out")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


LIVE_STATES = frozenset({JobState.PENDING, JobState.PROCESSING})
FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.TIMEOUT, JobState.FAILED, JobState.CANCELLED})

ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.PROCESSING, JobState.TIMEOUT, JobState.FAILED, JobState.CANCELLED}),
    # processing -> pending: a lapsed lease hands the job back to the queue (worker died mid-job).
    JobState.PROCESSING: frozenset(
        {JobState.PENDING, JobState.SUCCEEDED, JobState.TIMEOUT, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.TIMEOUT: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"job cannot move from {current} to {target}")
        self.current = current
        self.target = target


def check_transition(current: str, target: str) -> None:
    """Raise ``IllegalTransition`` unless ``current -> target`` is an allowed move."""
    if JobState(target) not in ALLOWED_TRANSITIONS[JobState(current)]:
        raise IllegalTransition(current, target)


def sources_for(target: str) -> list[str]:
    """States a job may be in to move to ``target``: the ``WHERE state IN (…)`` of a conditional update."""
    return [str(state) for state, targets in ALLOWED_TRANSITIONS.items() if JobState(target) in targets]
