import pytest

from providers import services
from providers.crypto import DecryptionFailed, decrypt_secret, encrypt_secret
from providers.models import ProviderCredential


def test_encryption_round_trips_and_hides_the_plaintext():
    token = encrypt_secret("AIza-secret-key")
    assert "AIza-secret-key" not in token
    assert decrypt_secret(token) == "AIza-secret-key"


def test_a_token_from_another_key_cannot_be_decrypted(settings):
    token = encrypt_secret("sk-one")
    settings.SECRET_KEY = "a-completely-different-secret-key-for-this-test"
    with pytest.raises(DecryptionFailed):
        decrypt_secret(token)


@pytest.mark.django_db
def test_stored_key_is_encrypted_at_rest_and_read_back():
    services.provider_key_set(provider="gemini", api_key="AIza-plaintext-123")
    raw = ProviderCredential.objects.values_list("encrypted_api_key", flat=True).get(provider="gemini")
    assert "AIza-plaintext-123" not in raw
    assert services.provider_key_get(provider="gemini") == "AIza-plaintext-123"


@pytest.mark.django_db
def test_environment_key_is_the_fallback(settings):
    settings.OPENAI_API_KEY = "sk-from-env"
    assert services.provider_key_get(provider="openai") == "sk-from-env"
    services.provider_key_set(provider="openai", api_key="sk-from-admin")
    assert services.provider_key_get(provider="openai") == "sk-from-admin"


@pytest.mark.django_db
def test_empty_key_removes_the_stored_one(settings):
    settings.TURBOTEXT_API_KEY = ""
    services.provider_key_set(provider="turbotext", api_key="tt-1")
    services.provider_key_set(provider="turbotext", api_key="")
    assert services.provider_key_get(provider="turbotext") == ""
