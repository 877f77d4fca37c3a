"""Studio configuration: the 15 static slots, template media bound to them, and global settings."""

from __future__ import annotations

import uuid

from django.conf import settings as django_settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from providers.kinds import ProviderKind

SLOT_COUNT = 15
SLOT_MAX_SIZE_LIMIT_MB = 20


def default_provider_concurrency() -> dict[str, int]:
    """Initial provider caps of a new install: the ``PROVIDER_CONCURRENCY`` environment value."""
    return dict(django_settings.PROVIDER_CONCURRENCY)


class ShareQrCorner(models.TextChoices):
    """Where a slot stamps the QR code of the guest's share page onto the returned image."""

    OFF = "off", _("Off")
    BOTTOM_RIGHT = "bottom-right", _("Bottom right")
    BOTTOM_LEFT = "bottom-left", _("Bottom left")


def static_slot_ids() -> list[str]:
    return [f"slot-{number:03d}" for number in range(1, SLOT_COUNT + 1)]


class Slot(models.Model):
    """One ingest URL. Exactly 15 exist (data migration); staff configure them, never add or delete.

    Changed only through ``slots.services.slot_update``, which refuses an active slot its provider
    could not serve (settings, bound templates, API key).
    """

    id = models.CharField(primary_key=True, max_length=16, editable=False)
    display_name = models.CharField(_("display name"), max_length=120, blank=True)
    provider = models.CharField(
        _("provider"), max_length=32, choices=ProviderKind.choices, default=ProviderKind.LOCAL
    )
    operation = models.CharField(_("operation"), max_length=64, blank=True)
    settings = models.JSONField(_("provider settings"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=False)
    size_limit_mb = models.PositiveSmallIntegerField(
        _("size limit, MB"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(SLOT_MAX_SIZE_LIMIT_MB)],
    )
    # A QR code of the result's share page (/s/<token>) stamped onto the returned image (jobs.share).
    share_qr = models.CharField(
        _("share QR code"),
        max_length=16,
        choices=ShareQrCorner.choices,
        default=ShareQrCorner.OFF,
        db_default=ShareQrCorner.OFF,
        help_text=_(
            "Print a small QR code of the guest's download page in this corner of the returned image."
        ),
    )
    # Failover: when this slot's provider fails and time is left, the photo goes through that slot's
    # provider and settings, once (jobs.worker); the fallback slot need not be active.
    fallback_slot = models.ForeignKey(
        "self",
        verbose_name=_("fallback slot"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_(
            "When this slot's provider fails and the booth's window still allows, the same photo goes "
            "through that slot's provider and settings, once. It need not be active."
        ),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["id"]
        verbose_name = _("slot")
        verbose_name_plural = _("slots")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(size_limit_mb__gte=1, size_limit_mb__lte=SLOT_MAX_SIZE_LIMIT_MB),
                name="slot_size_limit_range",
            ),
        ]

    def __str__(self) -> str:
        named = self.display_name and self.display_name != self.id  # new slots are named after their id
        return f"{self.id} · {self.display_name}" if named else self.id

    @property
    def size_limit_bytes(self) -> int:
        return int(self.size_limit_mb) * 1024 * 1024

    @property
    def ingest_path(self) -> str:
        return f"/ingest/{self.id}"

    @property
    def ingest_url(self) -> str:
        return f"{django_settings.PUBLIC_BASE_URL}{self.ingest_path}"


def template_upload_path(instance: TemplateMedia, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"templates/{instance.id}.{extension}"


class TemplateMedia(models.Model):
    """A long-lived reference image (style reference, frame) uploaded by staff. Never auto-deleted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=120)
    file = models.FileField(_("file"), upload_to=template_upload_path)
    mime_type = models.CharField(_("MIME type"), max_length=64, editable=False)
    size_bytes = models.PositiveBigIntegerField(_("size, bytes"), default=0, editable=False)
    sha256 = models.CharField(_("SHA-256"), max_length=64, editable=False)
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    uploaded_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("template image")
        verbose_name_plural = _("template images")

    def __str__(self) -> str:
        return self.name


class TemplateRole(models.TextChoices):
    STYLE_REFERENCE = "style_reference", _("Style reference")
    FRAME = "frame", _("Frame / overlay")
    TARGET = "target", _("Target face (deepfake)")


class SlotTemplateBinding(models.Model):
    """A template image bound to a slot in a role, in the order providers receive them."""

    slot = models.ForeignKey(Slot, on_delete=models.CASCADE, related_name="template_bindings")
    template = models.ForeignKey(TemplateMedia, on_delete=models.PROTECT, related_name="bindings")
    role = models.CharField(_("role"), max_length=32, choices=TemplateRole.choices)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["slot", "position", "id"]
        verbose_name = _("template binding")
        verbose_name_plural = _("template bindings")
        constraints = [
            models.UniqueConstraint(fields=["slot", "template", "role"], name="slot_template_role_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.template} ({self.get_role_display()})"


class StudioSettings(models.Model):
    """The global settings singleton (always the row with id 1)."""

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    sync_response_seconds = models.PositiveSmallIntegerField(_("sync response window, seconds"), default=48)
    result_retention_hours = models.PositiveIntegerField(
        _("result retention, hours"),
        default=72,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 30)],
    )
    public_link_ttl_seconds = models.PositiveIntegerField(
        _("temporary public link lifetime, seconds"),
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(3600)],
    )
    # manage.py prune_history deletes final jobs and processing-log rows older than this; the statistics
    # of those days go with them.
    history_retention_days = models.PositiveIntegerField(
        _("history kept, days"),
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_(
            "Final jobs and the processing log older than this are deleted, and their statistics with them."
        ),
    )
    # Late results (jobs.worker): after the booth's deadline the provider call in flight runs on this long,
    # and its image is kept for download and the gallery (the job stays a timeout).
    keep_late_results = models.BooleanField(
        _("keep late results"),
        default=True,
        help_text=_(
            "When the provider answers after the booth's window, keep the image for download and the "
            "gallery (the booth has already printed the original)."
        ),
    )
    late_result_grace_seconds = models.PositiveIntegerField(
        _("late result grace, seconds"),
        default=120,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text=_("How long after the window a provider call may run on for a late result."),
    )
    # Provider calls in flight at once across every worker, per provider ({"gemini": 64, …}); a provider
    # missing here (local) has no cap. Read by the claim statement (jobs.services.jobs_claim) itself.
    provider_concurrency = models.JSONField(
        _("provider concurrency caps"), default=default_provider_concurrency, blank=True
    )
    ingest_password_hash = models.CharField(max_length=256, blank=True, editable=False)
    ingest_password_rotated_at = models.DateTimeField(
        _("ingest password rotated at"), null=True, blank=True, editable=False
    )
    ingest_password_rotated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        verbose_name=_("ingest password rotated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        verbose_name = _("studio settings")
        verbose_name_plural = _("studio settings")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="studio_settings_singleton"),
        ]

    def __str__(self) -> str:
        return str(_("Studio settings"))

    @property
    def ingest_password_configured(self) -> bool:
        return bool(self.ingest_password_hash)
