"""The processing log: one row per ingest attempt (accepted or rejected) and per job outcome.

Never holds image bytes or secrets: the password field and file contents are not recorded.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class LogEvent(models.TextChoices):
    INGEST_ACCEPTED = "ingest_accepted", _("Ingest accepted")
    INGEST_REJECTED = "ingest_rejected", _("Ingest rejected")
    JOB_FINISHED = "job_finished", _("Job finished")


class ProcessingLogEntry(models.Model):
    created_at = models.DateTimeField(_("created at"), db_index=True)
    event = models.CharField(_("event"), max_length=32, choices=LogEvent.choices)
    # A plain string, not a foreign key: requests for unknown slots are logged too.
    slot_id = models.CharField(_("slot"), max_length=64, blank=True)
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="log_entries"
    )
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    job_state = models.CharField(_("job state"), max_length=16, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=32, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration, ms"), null=True, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    # A wrong ingest password this service had not seen before (it had to be hashed): what the
    # password lockout counts. Repeats of a known-wrong password (a booth left on an old one) do not.
    password_guess = models.BooleanField(_("new wrong password"), default=False, db_default=False)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("processing log entry")
        verbose_name_plural = _("processing log")
        indexes = [
            models.Index(fields=["slot_id", "-created_at"], name="log_slot_recent_idx"),
            # Ingest password lockout, per client: stats.selectors.password_guesses_count(client_ip=…).
            models.Index(
                fields=["client_ip", "created_at"],
                name="log_password_guesses_idx",
                condition=models.Q(password_guess=True),
            ),
            # Ingest password lockout, all clients: stats.selectors.password_guesses_count().
            models.Index(
                fields=["created_at"],
                name="log_all_password_guesses_idx",
                condition=models.Q(password_guess=True),
            ),
            # Trusted clients (a recent accepted photo): stats.selectors.client_recently_accepted.
            models.Index(
                fields=["client_ip", "created_at"],
                name="log_client_accepted_idx",
                condition=models.Q(event="ingest_accepted"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event} {self.slot_id}"
