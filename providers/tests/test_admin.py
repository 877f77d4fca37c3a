"""The provider API key pages: they render once a key exists and never show the key."""

import pytest
from django.urls import reverse
from django.utils.timezone import localtime

from providers.models import ProviderCredential
from providers.services import provider_key_set

pytestmark = pytest.mark.django_db


def test_key_list_shows_when_a_stored_key_was_last_updated(admin_client):
    credential = provider_key_set(provider="gemini", api_key="AIza-listed-key")
    response = admin_client.get(reverse("admin:providers_providercredential_changelist"))
    assert response.status_code == 200
    text = response.content.decode()
    assert f"{localtime(credential.updated_at):%Y-%m-%d %H:%M}" in text
    assert "AIza-listed-key" not in text


def test_key_change_page_renders_with_a_stored_key_and_replaces_it(admin_client):
    credential = provider_key_set(provider="openai", api_key="sk-first-key")
    url = reverse("admin:providers_providercredential_change", args=[credential.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert f"{localtime(credential.updated_at):%Y-%m-%d %H:%M}" in text, "the key's status, not a blank"
    assert "sk-first-key" not in text

    response = admin_client.post(url, {"api_key": "sk-second-key"})
    assert response.status_code == 302
    assert ProviderCredential.objects.get().updated_by is not None
