"""Reads of the processing log that decide things on the ingest hot path (password lockout)."""

from __future__ import annotations

from datetime import datetime

from stats.models import LogEvent, ProcessingLogEntry


def password_guesses_count(*, since: datetime, client_ip: str | None = None, limit: int) -> int:
    """New wrong ingest passwords since ``since`` (from one client, or from all), counted up to ``limit``.

    Served by log_password_guesses_idx / log_all_password_guesses_idx; the limit keeps the count cheap
    while someone is guessing hard.
    """
    guesses = ProcessingLogEntry.objects.filter(password_guess=True, created_at__gte=since)
    if client_ip is not None:
        guesses = guesses.filter(client_ip=client_ip)
    return guesses.values("id")[:limit].count()


def client_recently_accepted(*, client_ip: str | None, since: datetime) -> bool:
    """Whether this client had a photo accepted since ``since`` (served by log_client_accepted_idx)."""
    if client_ip is None:
        return False
    return ProcessingLogEntry.objects.filter(
        event=LogEvent.INGEST_ACCEPTED, client_ip=client_ip, created_at__gte=since
    ).exists()
