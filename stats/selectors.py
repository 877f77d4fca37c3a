"""Reads of the processing log that decide things on the ingest hot path (password lockout)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from photochanger.sql import sql
from stats.models import LogEvent, ProcessingLogEntry

# Every booth photo asks this, so it is one statement (the ORM's two counting queries cost more than the
# rest of the accept step), counting at most up to each limit: cheap even while someone guesses hard.
# Served by log_password_guesses_idx and log_all_password_guesses_idx.
_PASSWORD_GUESSES_SQL = sql(
    """
SELECT (SELECT count(*) FROM (SELECT 1 FROM {log}
                               WHERE {log.password_guess} AND {log.client_ip} = %(client_ip)s
                                 AND {log.created_at} >= %(since)s
                               LIMIT %(client_limit)s) AS from_this_client),
       (SELECT count(*) FROM (SELECT 1 FROM {log}
                               WHERE {log.password_guess} AND {log.created_at} >= %(since)s
                               LIMIT %(all_limit)s) AS from_everyone)
""",
    log=ProcessingLogEntry,
)


@dataclass(frozen=True)
class PasswordGuesses:
    from_this_client: int
    from_everyone: int


def password_guesses_count(
    *, since: datetime, client_ip: str | None, client_limit: int, all_limit: int
) -> PasswordGuesses:
    """New wrong ingest passwords since ``since``: from this client and from all, each up to its limit."""
    with connection.cursor() as cursor:
        cursor.execute(
            _PASSWORD_GUESSES_SQL,
            {"client_ip": client_ip, "since": since, "client_limit": client_limit, "all_limit": all_limit},
        )
        mine, everyone = cursor.fetchone()
    return PasswordGuesses(from_this_client=int(mine), from_everyone=int(everyone))


def client_recently_accepted(*, client_ip: str | None, since: datetime) -> bool:
    """Whether this client had a photo accepted since ``since`` (served by log_client_accepted_idx)."""
    if client_ip is None:
        return False
    return ProcessingLogEntry.objects.filter(
        event=LogEvent.INGEST_ACCEPTED, client_ip=client_ip, created_at__gte=since
    ).exists()
