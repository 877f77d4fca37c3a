"""Writes and reads of provider API keys."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import User

from providers.crypto import DecryptionFailed, decrypt_secret, encrypt_secret
from providers.kinds import ProviderKind
from providers.models import ProviderCredential

logger = logging.getLogger(__name__)

_ENVIRONMENT_KEYS = {
    ProviderKind.GEMINI: "GEMINI_API_KEY",
    ProviderKind.OPENAI: "OPENAI_API_KEY",
    ProviderKind.TURBOTEXT: "TURBOTEXT_API_KEY",
}


def provider_key_set(*, provider: str, api_key: str, user: User | None = None) -> ProviderCredential:
    """Store (or replace) a provider's API key, encrypted. An empty key removes it."""
    kind = ProviderKind(provider)
    if not api_key:
        ProviderCredential.objects.filter(provider=kind).delete()
        return ProviderCredential(provider=kind)
    credential, _created = ProviderCredential.objects.update_or_create(
        provider=kind,
        defaults={"encrypted_api_key": encrypt_secret(api_key), "updated_by": user},
    )
    return credential


def provider_key_get(*, provider: str) -> str:
    """The API key for ``provider``: the encrypted stored one, else the environment's, else ''."""
    credential = ProviderCredential.objects.filter(provider=provider).first()
    if credential is not None:
        try:
            return decrypt_secret(credential.encrypted_api_key)
        except DecryptionFailed:
            logger.error(
                "stored API key for %s cannot be decrypted; falling back to the environment", provider
            )
    variable = _ENVIRONMENT_KEYS.get(ProviderKind(provider))
    return str(getattr(settings, variable, "")) if variable else ""
