"""Writes and reads of provider API keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

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


@dataclass(frozen=True)
class ProviderKeyStatus:
    """What staff may know about a key: where it comes from and when it was set, never the key."""

    stored: bool
    updated_at: datetime | None = None
    updated_by: User | None = None
    # the environment has a key (used when none is stored)
    in_environment: bool = False


def provider_key_status(*, provider: str) -> ProviderKeyStatus:
    credential = ProviderCredential.objects.filter(provider=provider).select_related("updated_by").first()
    variable = _ENVIRONMENT_KEYS.get(ProviderKind(provider))
    in_environment = bool(variable and getattr(settings, variable, ""))
    if credential is None:
        return ProviderKeyStatus(stored=False, in_environment=in_environment)
    return ProviderKeyStatus(
        stored=True,
        updated_at=credential.updated_at,
        updated_by=credential.updated_by,
        in_environment=in_environment,
    )
