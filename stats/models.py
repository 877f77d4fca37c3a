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
            # Refusals over time: stats.selectors.stats_report (the refusals by reason of each bucket).
            models.Index(
                fields=["created_at"],
                name="log_rejected_idx",
                condition=models.Q(event="ingest_rejected"),
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


# Upper bounds (seconds) of the /metrics histogram buckets; the finalize statement files each job with
# width_bucket(seconds, DURATION_BUCKETS) + 1: 1 = up to the first bound, len + 1 = above the last.
DURATION_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)


class IngestCounter(models.Model):
    """Monotonic counts behind ``/metrics``, bumped by the statement that finalizes a job (its outcome,
    duration and queue-wait buckets, provider calls) or refuses a request (outcome = failure reason).

    Never decremented, never pruned: Prometheus counters must only grow. Test runs are not counted.
    Bucket numbers come from ``DURATION_BUCKETS`` (0 = not measured).
    """

    slot_id = models.CharField(max_length=64)
    provider = models.CharField(max_length=32, blank=True)
    outcome = models.CharField(max_length=32)
    duration_bucket = models.SmallIntegerField(default=0)
    wait_bucket = models.SmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)
    duration_sum_ms = models.BigIntegerField(default=0)
    wait_sum_ms = models.BigIntegerField(default=0)
    provider_calls = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("ingest counter")
        verbose_name_plural = _("ingest counters")
        constraints = [
            models.UniqueConstraint(
                fields=["slot_id", "provider", "outcome", "duration_bucket", "wait_bucket"],
                name="ingest_counter_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.slot_id} {self.provider} {self.outcome}: {self.count}"
