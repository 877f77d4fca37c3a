"""The provider kinds a slot can be set to. Adapters live in ``providers.adapters``."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProviderKind(models.TextChoices):
    LOCAL = "local", _("Local effects (offline)")
    GEMINI = "gemini", _("Google Gemini image")
    OPENAI = "openai", _("OpenAI GPT Image")
    TURBOTEXT = "turbotext", _("Turbotext")


# Providers called over the network: each needs an API key, and its calls in flight at once are capped
# across all workers (``StudioSettings.provider_concurrency``). The local provider needs neither.
NETWORK_PROVIDER_KINDS: tuple[ProviderKind, ...] = (
    ProviderKind.GEMINI,
    ProviderKind.OPENAI,
    ProviderKind.TURBOTEXT,
)
