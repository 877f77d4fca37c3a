"""Provider API keys, encrypted at rest; never shown back, only "configured, updated at …"."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from providers.kinds import ProviderKind


class ProviderCredential(models.Model):
    provider = models.CharField(_("provider"), max_length=32, choices=ProviderKind.choices, unique=True)
    encrypted_api_key = models.TextField(editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["provider"]
        verbose_name = _("provider API key")
        verbose_name_plural = _("provider API keys")

    def __str__(self) -> str:
        return self.get_provider_display()
