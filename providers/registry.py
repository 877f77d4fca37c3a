"""Adapter lookup by ``slot.provider`` and the settings validation shared by admin and commands."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from providers.adapters.gemini import GeminiProvider
from providers.adapters.local import LocalProvider
from providers.adapters.openai import OpenAIProvider
from providers.adapters.turbotext import TurbotextProvider
from providers.base import Provider

_ADAPTERS: dict[str, Provider] = {
    adapter.kind: adapter
    for adapter in (LocalProvider(), GeminiProvider(), OpenAIProvider(), TurbotextProvider())
}


def get_provider(kind: str) -> Provider:
    try:
        return _ADAPTERS[kind]
    except KeyError:
        raise LookupError(f"no adapter for provider {kind!r}") from None


def validate_slot_configuration(
    *, provider: str, operation: str, settings: dict[str, Any], template_roles: list[str]
) -> dict[str, str]:
    """Field-level problems with a slot's provider configuration ({} = valid)."""
    if provider not in _ADAPTERS:
        return {"provider": _("Provider “%(provider)s” is not available yet.") % {"provider": provider}}
    if not isinstance(settings, dict):
        return {"settings": _("Provider settings must be a JSON object.")}
    adapter = _ADAPTERS[provider]
    return adapter.validate_settings(operation or adapter.default_operation, settings, template_roles)
