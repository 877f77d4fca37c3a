"""Temporary media: job input photos and short-lived public links to files providers must download."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _


def new_media_id() -> str:
    # 192 random bits, URL-safe: the id is the only secret guarding a public link.
    return secrets.token_urlsafe(24)


class MediaKind(models.TextChoices):
    INPUT = "input", _("Input photo")
    PUBLIC_LINK = "public_link", _("Temporary public link")


class MediaObject(models.Model):
    """A file that lives only as long as its job (deleted at finalization or at ``expires_at``)."""

    id = models.CharField(primary_key=True, max_length=64, default=new_media_id, editable=False)
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.CASCADE, related_name="media_objects", null=True, blank=True
    )
    kind = models.CharField(_("kind"), max_length=16, choices=MediaKind.choices)
    # Name in the media store (media.storage). A public link may point at a file it does not own (a template).
    path = models.CharField(_("path"), max_length=255)
    owns_file = models.BooleanField(_("owns its file"), default=True)
    mime_type = models.CharField(_("MIME type"), max_length=64)
    size_bytes = models.PositiveBigIntegerField(_("size, bytes"), default=0)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("temporary file")
        verbose_name_plural = _("temporary files")
        indexes = [
            # jobs.cleanup.cleanup_run (_expired_media): "WHERE deleted_at IS NULL AND expires_at <= now".
            models.Index(
                fields=["expires_at"],
                name="media_live_expiry_idx",
                condition=models.Q(deleted_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id[:8]}…"
