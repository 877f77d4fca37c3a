"""Every admin page staff use renders, and the slot and settings forms save through the services."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from slots.models import Slot, StudioSettings
from slots.services import ingest_password_check

pytestmark = pytest.mark.django_db


def test_every_registered_model_has_a_working_changelist(admin_client):
    now = timezone.now()
    Job.objects.create(
        slot_id="slot-001", provider="local", created_at=now, expires_at=now + timedelta(seconds=48)
    )
    registered = [model for model in apps.get_models() if admin.site.is_registered(model)]
    assert len(registered) >= 6
    for model in registered:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = admin_client.get(url, follow=True)
        assert response.status_code == 200, url


def test_slot_page_shows_the_ingest_url_and_saves_a_valid_configuration(admin_client, settings):
    from providers.services import provider_key_set

    settings.PUBLIC_BASE_URL = "https://booth.example.com"
    provider_key_set(provider="gemini", api_key="AIza-admin-test")
    url = reverse("admin:slots_slot_change", args=["slot-002"])
    page = admin_client.get(url)
    assert b"https://booth.example.com/ingest/slot-002" in page.content

    form = {
        "display_name": "Wedding",
        "provider": "gemini",
        "operation": "image_edit",
        "settings-gemini-image_edit-prompt": "watercolor",
        "size_limit_mb": 15,
        "is_active": "on",
        "seen_version": 1,
        "template_bindings-TOTAL_FORMS": 0,
        "template_bindings-INITIAL_FORMS": 0,
        "template_bindings-MIN_NUM_FORMS": 0,
        "template_bindings-MAX_NUM_FORMS": 1000,
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    slot = Slot.objects.get(id="slot-002")
    assert (slot.provider, slot.is_active, slot.version) == ("gemini", True, 2)
    assert slot.updated_by is not None and slot.updated_by.username == "admin"

    stale = admin_client.post(url, {**form, "display_name": "Other"})
    assert stale.status_code == 200, "a save against an old version is refused"
    assert Slot.objects.get(id="slot-002").display_name == "Wedding"


def test_slot_page_refuses_to_activate_invalid_settings_with_a_field_message(admin_client):
    url = reverse("admin:slots_slot_change", args=["slot-003"])
    response = admin_client.post(
        url,
        {
            "display_name": "",
            "provider": "openai",
            "operation": "image_edit",
            "settings-openai-image_edit-size": "1024x1024",
            "size_limit_mb": 15,
            "is_active": "on",
            "seen_version": 1,
            "template_bindings-TOTAL_FORMS": 0,
            "template_bindings-INITIAL_FORMS": 0,
            "template_bindings-MIN_NUM_FORMS": 0,
            "template_bindings-MAX_NUM_FORMS": 1000,
        },
    )
    assert response.status_code == 200
    settings_form = response.context["adminform"].form.settings_forms["openai.image_edit"]
    assert settings_form.errors["prompt"] == ["Это поле обязательно."]
    assert not Slot.objects.get(id="slot-003").is_active


def test_settings_page_rotates_the_ingest_password_without_showing_it(admin_client):
    url = reverse("admin:slots_studiosettings_change", args=[1])
    response = admin_client.post(
        url,
        {
            "sync_response_seconds": 50,
            "result_retention_hours": 24,
            "public_link_ttl_seconds": 60,
            "history_retention_days": 90,
            "keep_late_results": "on",
            "late_result_grace_seconds": 120,
            "provider_cap_gemini": 64,
            "provider_cap_openai": 32,
            "provider_cap_turbotext": 32,
            "new_ingest_password": "rotated-pass-1",
        },
    )
    assert response.status_code == 302
    studio = StudioSettings.objects.get()
    assert (studio.sync_response_seconds, studio.result_retention_hours) == (50, 24)
    assert ingest_password_check(stored_hash=studio.ingest_password_hash, candidate="rotated-pass-1")
    page = admin_client.get(url)
    assert b"rotated-pass-1" not in page.content
    assert studio.ingest_password_rotated_by is not None
    assert studio.ingest_password_rotated_by.username == "admin"


def test_settings_page_stores_a_provider_key_encrypted_and_never_shows_it(admin_client):
    from providers.models import ProviderCredential
    from providers.services import provider_key_get

    url = reverse("admin:slots_studiosettings_change", args=[1])
    response = admin_client.post(
        url,
        {
            "sync_response_seconds": 48,
            "result_retention_hours": 72,
            "public_link_ttl_seconds": 60,
            "history_retention_days": 90,
            "keep_late_results": "on",
            "late_result_grace_seconds": 120,
            "provider_cap_gemini": 64,
            "provider_cap_openai": 32,
            "provider_cap_turbotext": 32,
            "api_key_openai": "sk-admin-secret",
        },
    )
    assert response.status_code == 302
    assert provider_key_get(provider="openai") == "sk-admin-secret"
    credential = ProviderCredential.objects.get(provider="openai")
    assert "sk-admin-secret" not in credential.encrypted_api_key
    page = admin_client.get(url)
    assert b"sk-admin-secret" not in page.content


def test_cancel_action_moves_only_live_jobs(admin_client):
    now = timezone.now()
    live = Job.objects.create(
        slot_id="slot-001", provider="local", created_at=now, expires_at=now + timedelta(seconds=48)
    )
    final = Job.objects.create(
        slot_id="slot-001",
        provider="local",
        state="succeeded",
        created_at=now,
        expires_at=now + timedelta(seconds=48),
    )
    response = admin_client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "cancel_live_jobs", "_selected_action": [str(live.id), str(final.id)]},
        follow=True,
    )
    assert response.status_code == 200
    live.refresh_from_db()
    final.refresh_from_db()
    assert (live.state, final.state) == ("cancelled", "succeeded")
    assert live.finalized_at is not None


def test_staff_pages_speak_russian_by_default(admin_client):
    page = admin_client.get(reverse("admin:index"))
    text = page.content.decode()
    assert "Слоты" in text
    assert "PhotoChanger" in text
    slot_page = admin_client.get(reverse("admin:slots_slot_change", args=["slot-001"])).content.decode()
    assert "Настройки провайдера" in slot_page or "настройки провайдера" in slot_page


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("admin:slots_slot_changelist", "15 слотов"),
        ("admin:auth_user_changelist", "1 пользователь"),
        ("admin:slots_templatemedia_changelist", "0 шаблонов"),
    ],
)
def test_list_footers_count_in_grammatical_russian(admin_client, studio, url, words):
    assert words in admin_client.get(reverse(url)).content.decode()
