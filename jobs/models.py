"""Jobs: one row per accepted ingest. The ``jobs_job`` table is also the queue."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from jobs.states import LIVE_STATES, JobState
from photochanger.errors import FailureReason


class Job(models.Model):
    id = models.UUIDField(_("job id"), primary_key=True, default=uuid.uuid4, editable=False)
    slot = models.ForeignKey(
        "slots.Slot", verbose_name=_("slot"), on_delete=models.PROTECT, related_name="jobs"
    )
    state = models.CharField(_("state"), max_length=16, choices=JobState.choices, default=JobState.PENDING)

    # Provider configuration snapshotted at ingest, so a slot edited mid-job does not change the job.
    provider = models.CharField(_("provider"), max_length=32)
    operation = models.CharField(_("operation"), max_length=64, blank=True)
    provider_settings = models.JSONField(_("provider settings"), default=dict)
    # Template images bound to the slot at ingest: [{"path", "mime_type", "role", "name"}].
    templates = models.JSONField(_("templates"), default=list, blank=True)
    provider_job_reference = models.CharField(_("provider job reference"), max_length=128, blank=True)
    # Snapshotted at ingest too: the QR corner of the slot (slots.ShareQrCorner), the fallback slot's
    # configuration ({} for none: {"slot_id", "provider", "operation", "provider_settings", "templates",
    # "prompt_sent"}), and how long a call may run on past the deadline for a late result (0: not kept).
    # db_default: a row written before these existed, or by an INSERT that does not name them.
    share_qr = models.CharField(_("share QR code"), max_length=16, default="off", db_default="off")
    fallback = models.JSONField(_("fallback slot"), default=dict, db_default={}, blank=True)
    late_result_grace_seconds = models.PositiveIntegerField(
        _("late result grace, seconds"), default=0, db_default=0
    )
    # The prompt actually sent to the primary provider: the slot's prompt with the booth's fields filled
    # in (jobs.prompts); "" when the provider takes none.
    prompt_sent = models.TextField(_("prompt sent"), blank=True, default="", db_default="")
    # What each provider attempt came to ([{"slot_id", "provider", "outcome", "failure_reason",
    # "message", "provider_calls"}]: the slot's own provider, then the fallback's) and which slot's
    # provider produced the result ("" when none did).
    attempts = models.JSONField(_("provider attempts"), default=list, db_default=[], blank=True)
    answered_by = models.CharField(
        _("answered by slot"), max_length=16, blank=True, default="", db_default=""
    )
    # The provider whose call this job holds open in place of its own: the fallback's while it runs, or
    # after the deadline while a late result may still arrive. Counted against that provider's cap by
    # the claim (jobs.services.jobs_claim); "" when none.
    open_call_provider = models.CharField(
        _("open provider call"), max_length=32, blank=True, default="", db_default=""
    )

    # Deadlines, computed once by photochanger.deadlines at creation / finalization.
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    finalized_at = models.DateTimeField(_("finalized at"), null=True, blank=True)

    # Queue bookkeeping.
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    claimed_by = models.CharField(_("claimed by"), max_length=128, blank=True)
    claim_count = models.PositiveSmallIntegerField(_("claims"), default=0)
    provider_calls = models.PositiveSmallIntegerField(_("provider calls"), default=0)

    failure_reason = models.CharField(
        _("failure reason"), max_length=32, choices=FailureReason.choices, blank=True
    )
    failure_message = models.CharField(_("failure message"), max_length=500, blank=True)

    # The result file (its name in the media store, media.storage); the input photo is a media.MediaObject.
    result_path = models.CharField(_("result file"), max_length=255, blank=True)
    result_mime_type = models.CharField(_("result MIME type"), max_length=64, blank=True)
    result_size_bytes = models.PositiveBigIntegerField(_("result size, bytes"), null=True, blank=True)
    result_sha256 = models.CharField(_("result SHA-256"), max_length=64, blank=True)
    result_expires_at = models.DateTimeField(_("result expires at"), null=True, blank=True)
    result_deleted_at = models.DateTimeField(_("result deleted at"), null=True, blank=True)
    # When a result arrived after the deadline (the job stays a timeout; jobs.late_results).
    late_result_at = models.DateTimeField(_("late result at"), null=True, blank=True)
    # The guest's share page /s/<token> (jobs.share): 192 random bits, made with the result; "" when none.
    share_token = models.CharField(
        _("share token"), max_length=64, blank=True, default="", db_default="", editable=False
    )

    # Small JPEG previews for staff (media.thumbnails, thumbnails/ in the media store), made once by the
    # worker (the input's recorded by the finalize that wins, the result's just after it); removed by
    # cleanup with the result, and the input's
    # once the result retention has passed. "" when none (not made, undecodable, or already removed).
    # db_default: the hot path's INSERT (jobs.services.job_create) does not have to name them.
    input_thumbnail_path = models.CharField(
        _("input thumbnail"), max_length=255, blank=True, default="", db_default=""
    )
    result_thumbnail_path = models.CharField(
        _("result thumbnail"), max_length=255, blank=True, default="", db_default=""
    )

    # Everything the booth sent besides the file and the password (hash, time, survey answers…).
    request_metadata = models.JSONField(_("request metadata"), default=dict, blank=True)
    # A staff test run from the admin (no booth, no ingest password): kept out of the booth statistics.
    # db_default: the hot path's INSERT (jobs.services.job_create) does not have to name it.
    is_test = models.BooleanField(_("test run"), default=False, db_default=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        indexes = [
            # Queue poll: jobs.services.jobs_claim — "WHERE state = 'pending' AND expires_at > now
            # ORDER BY created_at … FOR UPDATE SKIP LOCKED".
            models.Index(
                fields=["created_at"],
                name="job_pending_queue_idx",
                condition=models.Q(state="pending"),
            ),
            # Deadline sweep: jobs.services.jobs_recover_stale — live jobs past their deadline, oldest first.
            models.Index(
                fields=["expires_at"],
                name="job_live_deadline_idx",
                condition=models.Q(state__in=["pending", "processing"]),
            ),
            # Result cleanup: jobs.cleanup.cleanup_run (_expired_results) — stored results by expiry.
            models.Index(
                fields=["result_expires_at"],
                name="job_result_expiry_idx",
                condition=models.Q(result_deleted_at__isnull=True) & ~models.Q(result_path=""),
            ),
            # Calls in flight per capped provider: jobs.services.jobs_claim — "SELECT provider, count(*)
            # … WHERE state = 'processing' AND provider IN (capped providers) GROUP BY provider".
            models.Index(
                fields=["provider"],
                name="job_processing_provider_idx",
                condition=models.Q(state="processing"),
            ),
            # Statistics: stats.selectors.stats_report — booth jobs (not test runs) by time received.
            models.Index(
                fields=["created_at"],
                name="job_created_report_idx",
                condition=models.Q(is_test=False),
            ),
            # Input thumbnail cleanup: jobs.cleanup.cleanup_run (_expired_input_thumbnails) — final jobs
            # still holding an input thumbnail, by finalization time.
            models.Index(
                fields=["finalized_at"],
                name="job_input_thumbnail_idx",
                condition=~models.Q(input_thumbnail_path=""),
            ),
            # Calls held open past the processing state, per provider: jobs.services.jobs_claim (in_flight).
            models.Index(
                fields=["open_call_provider"],
                name="job_open_call_idx",
                condition=~models.Q(open_call_provider=""),
            ),
            # Slot gallery: recent jobs of a slot.
            models.Index(fields=["slot", "-created_at"], name="job_slot_recent_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="job_expires_after_created"
            ),
            # Also the index of the share page's lookup (jobs.share.share_page_get).
            models.UniqueConstraint(
                fields=["share_token"], condition=~models.Q(share_token=""), name="job_share_token_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} · {self.get_state_display()}"

    @property
    def is_final(self) -> bool:
        return self.state not in LIVE_STATES


class WorkerHeartbeat(models.Model):
    """A queue worker's sign of life, written every few seconds (``/readyz``, ``/metrics``)."""

    name = models.CharField(_("worker"), max_length=128, primary_key=True)
    started_at = models.DateTimeField(_("started at"))
    last_seen_at = models.DateTimeField(_("last seen at"))
    jobs_in_flight = models.PositiveIntegerField(_("jobs in flight"), default=0)

    class Meta:
        ordering = ["-last_seen_at"]
        verbose_name = _("worker")
        verbose_name_plural = _("workers")

    def __str__(self) -> str:
        return self.name
