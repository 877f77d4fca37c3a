"""The studio settings and slot pages: every mistake comes back as a form error, never a 500."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils.html import escape

from jobs.tests.booth import make_png
from slots import services
from slots.models import Slot, SlotTemplateBinding, TemplateMedia
from slots.tests.slot_page import slot_form, studio_settings_form

pytestmark = pytest.mark.django_db

SETTINGS_URL = reverse("admin:slots_studiosettings_change", args=[1])


@pytest.mark.parametrize("seconds", [44, 61])
def test_an_out_of_range_sync_window_is_a_field_error_and_nothing_is_saved(admin_client, settings, seconds):
    settings.SYNC_RESPONSE_MIN_SECONDS = 45
    services.studio_settings_get()
    response = admin_client.post(
        SETTINGS_URL, studio_settings_form(sync_response_seconds=seconds, result_retention_hours=24)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["sync_response_seconds"] == [
        "Окно синхронного ответа должно быть от 45 до 60 секунд."
    ]
    studio = services.studio_settings_get()
    assert (studio.sync_response_seconds, studio.result_retention_hours) == (48, 72)


def test_settings_page_shows_each_provider_cap_in_russian_and_saves_them(admin_client, settings):
    settings.PROVIDER_CONCURRENCY = {"gemini": 64, "openai": 32, "turbotext": 32}
    page = admin_client.get(SETTINGS_URL)
    form = page.context["adminform"].form
    caps = [form[f"provider_cap_{kind}"].value() for kind in ("gemini", "openai", "turbotext")]
    assert caps == [64, 32, 32]
    text = page.content.decode()
    assert "Одновременных вызовов: Google Gemini (изображения)" in text
    assert "Наибольшее число одновременных вызовов этого провайдера по всем обработчикам" in text

    response = admin_client.post(
        SETTINGS_URL,
        studio_settings_form(provider_cap_gemini=100, provider_cap_openai=8, provider_cap_turbotext=1),
    )
    assert response.status_code == 302
    studio = services.studio_settings_get()
    assert studio.provider_concurrency == {"gemini": 100, "openai": 8, "turbotext": 1}
    assert studio.updated_by is not None and studio.updated_by.username == "admin"


def test_an_out_of_range_provider_cap_is_a_field_error_and_nothing_is_saved(admin_client):
    before = services.studio_settings_get().provider_concurrency
    response = admin_client.post(
        SETTINGS_URL,
        studio_settings_form(provider_cap_gemini=0, provider_cap_openai=1001, sync_response_seconds=50),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"provider_cap_gemini", "provider_cap_openai"}
    studio = services.studio_settings_get()
    assert (studio.provider_concurrency, studio.sync_response_seconds) == (before, 48)


def frame_template(name="Frame"):
    template = TemplateMedia(name=name)
    template.file.save(
        f"{name.lower()}.png", ContentFile(make_png(48, 48, transparent_center=True)), save=False
    )
    return services.template_media_save(template=template)


def test_one_save_binds_a_frame_and_activates_a_frame_slot(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    frame = frame_template()
    response = admin_client.post(
        reverse("admin:slots_slot_change", args=["slot-006"]),
        slot_form(
            "slot-006",
            bindings=[{"template": frame.pk, "role": "frame", "position": 0}],
            provider="local",
            operation="frame",
            settings={"output_format": "png"},
            is_active="on",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    slot = Slot.objects.get(id="slot-006")
    assert (slot.provider, slot.operation, slot.is_active, slot.version) == ("local", "frame", True, 2)
    assert list(slot.template_bindings.values_list("template_id", "role")) == [(frame.pk, "frame")]


def test_staff_who_may_change_slots_may_bind_their_templates(client, settings, tmp_path):
    from django.contrib.auth.models import Permission, User

    settings.MEDIA_ROOT = tmp_path
    staff = User.objects.create_user(username="studio", password="studio-pass-1", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_slot", "change_slot"]))
    client.force_login(staff)
    frame = frame_template()
    response = client.post(
        reverse("admin:slots_slot_change", args=["slot-009"]),
        slot_form(
            "slot-009",
            bindings=[{"template": frame.pk, "role": "frame", "position": 0}],
            provider="local",
            operation="frame",
            is_active="on",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    slot = Slot.objects.get(id="slot-009")
    assert slot.is_active
    assert list(slot.template_bindings.values_list("role", flat=True)) == ["frame"]


def test_activating_a_frame_slot_without_a_frame_is_an_error_and_the_slot_stays_inactive(admin_client):
    response = admin_client.post(
        reverse("admin:slots_slot_change", args=["slot-006"]),
        slot_form("slot-006", provider="local", operation="frame", settings={}, is_active="on"),
    )
    assert response.status_code == 200
    (bindings,) = response.context["inline_admin_formsets"]
    (message,) = bindings.formset.non_form_errors()
    assert "Рамка / наложение" in message
    assert escape(message) in response.content.decode(), "shown above the template bindings"
    slot = Slot.objects.get(id="slot-006")
    assert (slot.operation, slot.is_active, slot.version) == ("", False, 1)


def test_removing_the_only_frame_of_an_active_frame_slot_is_an_error_and_keeps_the_frame(
    admin_client, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    binding = SlotTemplateBinding.objects.create(slot_id="slot-007", template=frame_template(), role="frame")
    services.slot_update(
        slot=Slot.objects.get(id="slot-007"),
        fields={"provider": "local", "operation": "frame", "is_active": True},
    )
    row = {"id": binding.pk, "template": binding.template_id, "role": "frame", "position": 0, "DELETE": "on"}
    response = admin_client.post(
        reverse("admin:slots_slot_change", args=["slot-007"]),
        slot_form("slot-007", bindings=[row], is_active="on"),
    )
    assert response.status_code == 200
    (bindings,) = response.context["inline_admin_formsets"]
    assert "Рамка / наложение" in " ".join(bindings.formset.non_form_errors())
    assert SlotTemplateBinding.objects.filter(pk=binding.pk).exists()


@pytest.mark.parametrize(
    "change", [{}, {"is_active": "on", "operation": "sepia"}], ids=["deactivate", "to-sepia"]
)
def test_one_save_removes_the_frame_of_a_frame_slot_that_stops_needing_it(
    admin_client, settings, tmp_path, change
):
    settings.MEDIA_ROOT = tmp_path
    binding = SlotTemplateBinding.objects.create(slot_id="slot-010", template=frame_template(), role="frame")
    services.slot_update(
        slot=Slot.objects.get(id="slot-010"),
        fields={"provider": "local", "operation": "frame", "is_active": True},
    )
    row = {"id": binding.pk, "template": binding.template_id, "role": "frame", "position": 0, "DELETE": "on"}
    response = admin_client.post(
        reverse("admin:slots_slot_change", args=["slot-010"]), slot_form("slot-010", bindings=[row], **change)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    slot = Slot.objects.get(id="slot-010")
    assert (slot.operation, slot.is_active) == (change.get("operation", "frame"), bool(change))
    assert not slot.template_bindings.exists()


@pytest.mark.parametrize(
    ("provider", "operation"),
    [("gemini", "image_edit"), ("openai", "image_edit"), ("turbotext", "image2image")],
)
def test_activating_a_slot_whose_provider_has_no_api_key_is_an_error_on_active(
    admin_client, settings, provider, operation
):
    settings.GEMINI_API_KEY = settings.OPENAI_API_KEY = settings.TURBOTEXT_API_KEY = ""
    response = admin_client.post(
        reverse("admin:slots_slot_change", args=["slot-008"]),
        slot_form(
            "slot-008", provider=provider, operation=operation, settings={"prompt": "p"}, is_active="on"
        ),
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["is_active"] == [
        "Для этого провайдера не задан API-ключ; добавьте его в настройках студии."
    ]
    assert not Slot.objects.get(id="slot-008").is_active


def test_a_key_from_the_environment_is_enough_to_activate_a_slot(admin_client, settings):
    settings.OPENAI_API_KEY = "sk-from-the-environment"
    response = admin_client.post(
        reverse("admin:slots_slot_change", args=["slot-008"]),
        slot_form(
            "slot-008", provider="openai", operation="image_edit", settings={"prompt": "p"}, is_active="on"
        ),
    )
    assert response.status_code == 302
    assert Slot.objects.get(id="slot-008").is_active
