"""Encryption of provider API keys at rest (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key is ``FIELD_ENCRYPTION_KEY`` (a Fernet key) when set, otherwise one derived from ``SECRET_KEY``
with HKDF, so development needs no extra configuration. Rotating the key source makes stored keys
unreadable; staff then re-enter them.
"""

from __future__ import annotations

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class DecryptionFailed(Exception):
    pass


@cache
def _fernet(secret_key: str, field_key: str) -> Fernet:
    if field_key:
        return Fernet(field_key.encode())
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"photochanger", info=b"provider-api-keys"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _current() -> Fernet:
    return _fernet(settings.SECRET_KEY, settings.FIELD_ENCRYPTION_KEY)


def encrypt_secret(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise DecryptionFailed("stored secret cannot be decrypted with the current key") from error
