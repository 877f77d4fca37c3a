"""The slot page, the slot list, template previews and provider keys on Studio settings, through the
test client: staff only, generated settings forms, typed settings, field errors in Russian."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape
from PIL import Image

from jobs.models import Job
from jobs.tests.booth import make_png
from providers.models import ProviderCredential
from providers.schemas import schema_keys
from providers.services import provider_key_get, provider_key_set
from slots import services
from slots.models import Slot, TemplateMedia
from slots.tests.slot_page import slot_form, studio_settings_form

pytestmark = pytest.mark.django_db

SLOT_LIST = reverse("admin:slots_slot_changelist")
SETTINGS_URL = reverse("admin:slots_studiosettings_change", args=[1])


def slot_url(slot_id: str) -> str:
    return reverse("admin:slots_slot_change", args=[slot_id])


def uploaded_frame(name: str = "frame.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, make_png(64, 48, transparent_center=True), content_type="image/png")


def stored_frame(name: str = "Frame") -> TemplateMedia:
    template = TemplateMedia(name=name)
    template.file = uploaded_frame()
    return services.template_media_save(template=template)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.mark.parametrize(
    "url",
    [SLOT_LIST, slot_url("slot-001"), SETTINGS_URL, reverse("admin:slots_templatemedia_changelist")],
)
def test_anonymous_visitors_of_the_slot_pages_are_sent_to_the_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_visitors_get_no_template_preview(client, media_root):
    frame = stored_frame()
    response = client.get(reverse("admin:slots_templatemedia_preview", args=[frame.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_slot_or_template_permissions_get_no_template_preview(client, media_root):
    frame = stored_frame()
    staff = User.objects.create_user(username="cashier", password="cashier-pass-1", is_staff=True)
    client.force_login(staff)
    response = client.get(reverse("admin:slots_templatemedia_preview", args=[frame.pk]))
    assert response.status_code == 403


def test_staff_who_may_view_slots_get_a_template_preview_no_larger_than_240_pixels(client, media_root):
    template = TemplateMedia(name="Big frame")
    template.file = SimpleUploadedFile("big.png", make_png(1200, 900), content_type="image/png")
    services.template_media_save(template=template)
    staff = User.objects.create_user(username="viewer", password="viewer-pass-1", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename="view_slot"))
    client.force_login(staff)
    response = client.get(reverse("admin:slots_templatemedia_preview", args=[template.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    thumbnail = media_root / "templates" / "thumbnails" / f"{template.pk}.png"
    with Image.open(thumbnail) as image:
        assert image.size == (240, 180)


def test_the_slot_page_offers_a_generated_settings_form_for_every_operation_and_no_json_box(admin_client):
    page = admin_client.get(slot_url("slot-004"))
    form = page.context["adminform"].form
    assert "settings" not in form.fields
    assert set(form.settings_forms) == {f"{provider}.{operation}" for provider, operation in schema_keys()}
    gemini = form.settings_forms["gemini.image_edit"]
    assert type(gemini.fields["prompt"].widget).__name__ == "Textarea"
    assert gemini.fields["prompt"].label == "Описание (промпт)"
    assert [value for value, _label in gemini.fields["aspect_ratio"].choices][1:] == [
        "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
    ]  # fmt: skip
    assert gemini["model"].value() == "gemini-2.5-flash-image", "the default, shown"
    assert gemini.fields["retry_policy__max_attempts"].help_text.endswith("От 1 до 10. По умолчанию: 6.")
    text = page.content.decode()
    assert 'data-settings-for="local.sepia"' in text and 'data-settings-for="gemini.image_edit"' in text
    assert '<datalist id="id_settings-gemini-image_edit-model_suggestions">' in text
    assert 'value="gemini-3-pro-image-preview"' in text


def test_the_operation_choices_are_the_providers_with_their_titles(admin_client):
    page = admin_client.get(slot_url("slot-004"))
    operation = page.context["adminform"].form.fields["operation"]
    assert dict(operation.choices) == {
        "frame": "Рамка поверх фото",
        "grayscale": "Чёрно-белое",
        "resize": "Уменьшение",
        "sepia": "Сепия",
    }


def test_the_booth_panel_gives_the_url_the_fields_and_a_timeout_longer_than_the_sync_window(
    admin_client, settings
):
    settings.PUBLIC_BASE_URL = "https://booth.example.com"
    services.studio_settings_update(change=services.StudioSettingsChange(sync_response_seconds=50))
    text = admin_client.get(slot_url("slot-006")).content.decode()
    assert 'data-copy="https://booth.example.com/ingest/slot-006"' in text
    assert "<code>fileToUpload</code>" in text and "<code>password</code>" in text
    assert "таймаут: 55 с (студия отвечает за 50 с" in text
    assert f'href="{SETTINGS_URL}"' in text
    assert '<a href="/admin/slots/slot/slot-006/test-run/" class="slot-test-run">Тестовый запуск</a>' in text
    assert 'href="/admin/stats/dashboard/"' in text, "the statistics are one click away"
    assert 'id="results"' in text, "the slot's recent results are on its page"


def test_settings_are_saved_as_typed_values_from_the_generated_fields(admin_client, settings):
    settings.OPENAI_API_KEY = "sk-from-the-environment"
    response = admin_client.post(
        slot_url("slot-008"),
        slot_form(
            "slot-008",
            provider="openai",
            operation="image_edit",
            settings={
                "prompt": "  акварель  ",
                "output_format": "webp",
                "output_compression": "80",
                "retry_policy": {"max_attempts": "3", "base_backoff_seconds": "0.25"},
            },
            is_active="on",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    slot = Slot.objects.get(id="slot-008")
    assert slot.settings == {
        "prompt": "акварель",
        "output_format": "webp",
        "output_compression": 80,
        "retry_policy": {"max_attempts": 3, "base_backoff_seconds": 0.25},
    }


def test_an_out_of_range_setting_is_a_russian_error_on_its_field_and_nothing_is_saved(admin_client):
    response = admin_client.post(
        slot_url("slot-011"),
        slot_form(
            "slot-011", provider="local", operation="sepia", settings={"quality": "100"}, is_active="on"
        ),
    )
    assert response.status_code == 200
    settings_form = response.context["adminform"].form.settings_forms["local.sepia"]
    assert settings_form.errors["quality"] == ["Должно быть от 1 до 95."]
    assert escape("Должно быть от 1 до 95.") in response.content.decode()
    assert Slot.objects.get(id="slot-011").version == 1


def test_a_setting_an_adapter_rejects_is_a_russian_error_on_its_field(admin_client, settings):
    settings.GEMINI_API_KEY = "AIza-from-the-environment"
    response = admin_client.post(
        slot_url("slot-012"),
        slot_form(
            "slot-012",
            provider="gemini",
            operation="image_edit",
            settings={"prompt": "p", "model": "gemini-2.5-flash-image", "image_size": "2K"},
            is_active="on",
        ),
    )
    assert response.status_code == 200
    settings_form = response.context["adminform"].form.settings_forms["gemini.image_edit"]
    assert settings_form.errors["image_size"] == ["Размер изображения принимают только модели Gemini 3 Pro."]


def test_an_inactive_slot_may_keep_incomplete_settings(admin_client):
    response = admin_client.post(
        slot_url("slot-013"), slot_form("slot-013", provider="gemini", operation="image_edit", settings={})
    )
    assert response.status_code == 302
    slot = Slot.objects.get(id="slot-013")
    assert (slot.provider, slot.operation, slot.is_active) == ("gemini", "image_edit", False)


def test_an_operation_of_another_provider_is_refused(admin_client):
    response = admin_client.post(
        slot_url("slot-014"), slot_form("slot-014", provider="gemini", operation="frame", settings={})
    )
    assert response.status_code == 200
    assert "operation" in response.context["adminform"].form.errors
    assert Slot.objects.get(id="slot-014").provider == "local"


def test_a_frame_uploaded_on_the_slot_page_is_stored_and_bound_in_the_same_save(admin_client, media_root):
    form = slot_form(
        "slot-006",
        bindings=[{"role": "frame", "position": 0}],
        provider="local",
        operation="frame",
        settings={"output_format": "png"},
        is_active="on",
    )
    form["template_bindings-0-new_file"] = uploaded_frame("Свадебная рамка.png")
    response = admin_client.post(slot_url("slot-006"), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    slot = Slot.objects.get(id="slot-006")
    assert slot.is_active
    (binding,) = slot.template_bindings.select_related("template__uploaded_by")
    assert (binding.role, binding.template.name, binding.template.mime_type) == (
        "frame",
        "Свадебная рамка",
        "image/png",
    )
    assert binding.template.uploaded_by is not None and binding.template.uploaded_by.username == "admin"
    assert (media_root / binding.template.file.name).exists()

    page = admin_client.get(slot_url("slot-006")).content.decode()
    assert reverse("admin:slots_templatemedia_preview", args=[binding.template.pk]) in page


def test_an_upload_that_is_not_an_image_is_an_error_on_its_row_and_nothing_is_saved(admin_client, media_root):
    form = slot_form(
        "slot-006", bindings=[{"role": "frame", "position": 0}], provider="local", operation="frame"
    )
    form["template_bindings-0-new_file"] = SimpleUploadedFile("frame.png", b"not an image at all")
    response = admin_client.post(slot_url("slot-006"), form)
    assert response.status_code == 200
    (bindings,) = response.context["inline_admin_formsets"]
    assert bindings.formset.forms[0].errors["new_file"] == [
        "Файл не является изображением JPEG, PNG, WebP или HEIC."
    ]
    assert not TemplateMedia.objects.exists()


def test_a_binding_row_needs_a_template_or_an_upload_but_not_both(admin_client, media_root):
    frame = stored_frame()
    both = slot_form("slot-006", bindings=[{"template": frame.pk, "role": "frame", "position": 0}])
    both["template_bindings-0-new_file"] = uploaded_frame()
    neither = slot_form("slot-006", bindings=[{"role": "frame", "position": 0}])
    for form, field in [(both, "new_file"), (neither, "template")]:
        response = admin_client.post(slot_url("slot-006"), form)
        assert response.status_code == 200
        (bindings,) = response.context["inline_admin_formsets"]
        assert field in bindings.formset.forms[0].errors
    assert TemplateMedia.objects.count() == 1


@time_machine.travel(datetime(2026, 6, 10, 12, 0, tzinfo=UTC), tick=False)
def test_the_slot_list_shows_url_model_state_last_photo_and_todays_counts_in_a_few_queries(
    admin_client, settings, django_assert_max_num_queries
):
    settings.PUBLIC_BASE_URL = "https://booth.example.com"
    settings.GEMINI_API_KEY = "AIza-from-the-environment"
    services.slot_update(
        slot=Slot.objects.get(id="slot-003"),
        fields={
            "provider": "gemini",
            "operation": "image_edit",
            "settings": {"prompt": "p"},
            "is_active": True,
        },
    )
    now = datetime.now(UTC).replace(microsecond=0)
    for minutes, state in enumerate(["succeeded", "succeeded", "succeeded", "timeout", "failed", "failed"]):
        created = now - timedelta(seconds=minutes + 1)
        Job.objects.create(
            slot_id="slot-003", provider="gemini", state=state, created_at=created,
            expires_at=created + timedelta(seconds=48),
        )  # fmt: skip
    with django_assert_max_num_queries(8):
        response = admin_client.get(SLOT_LIST)
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-copy="https://booth.example.com/ingest/slot-003"' in text
    assert "gemini-2.5-flash-image" in text, "the schema's default model"
    assert "Включён" in text and "Выключен" in text
    assert '<span class="today-images" title="снимки">3</span>' in text
    assert '<span class="today-timeouts" title="таймауты">1</span>' in text
    assert '<span class="today-errors" title="ошибки">2</span>' in text
    assert text.count('class="button copy-button"') == 15


def test_the_settings_page_says_when_each_key_was_updated_and_never_shows_it(admin_client, settings):
    settings.OPENAI_API_KEY = "sk-from-the-environment"
    settings.TURBOTEXT_API_KEY = ""
    provider_key_set(provider="gemini", api_key="AIza-stored-key")
    page = admin_client.get(SETTINGS_URL)
    form = page.context["adminform"].form
    assert form.fields["api_key_gemini"].help_text.startswith("Задан, обновлён ")
    assert form.fields["api_key_openai"].help_text.startswith(
        "Здесь не задан: используется ключ из окружения."
    )
    assert form.fields["api_key_turbotext"].help_text.startswith(
        "Не задан: слоты этого провайдера нельзя включить."
    )
    assert "AIza-stored-key" not in page.content.decode()


def test_a_stored_key_is_cleared_from_the_settings_page_and_others_are_kept(admin_client, settings):
    settings.GEMINI_API_KEY = settings.TURBOTEXT_API_KEY = ""
    provider_key_set(provider="gemini", api_key="AIza-to-clear")
    provider_key_set(provider="turbotext", api_key="tt-to-keep")
    response = admin_client.post(SETTINGS_URL, studio_settings_form(clear_api_key_gemini="on"))
    assert response.status_code == 302
    assert provider_key_get(provider="gemini") == ""
    assert provider_key_get(provider="turbotext") == "tt-to-keep"


def test_a_new_key_and_clear_together_is_an_error_and_nothing_changes(admin_client):
    provider_key_set(provider="openai", api_key="sk-old")
    response = admin_client.post(
        SETTINGS_URL,
        studio_settings_form(api_key_openai="sk-new", clear_api_key_openai="on", result_retention_hours=5),
    )
    assert response.status_code == 200
    assert "clear_api_key_openai" in response.context["adminform"].form.errors
    assert provider_key_get(provider="openai") == "sk-old"
    assert services.studio_settings_get().result_retention_hours == 72


def test_a_key_is_stored_with_who_set_it(admin_client):
    response = admin_client.post(SETTINGS_URL, studio_settings_form(api_key_turbotext="tt-new-key"))
    assert response.status_code == 302
    credential = ProviderCredential.objects.get(provider="turbotext")
    assert credential.updated_by is not None and credential.updated_by.username == "admin"
    assert provider_key_get(provider="turbotext") == "tt-new-key"


def test_the_slot_page_shows_its_recent_results_with_download_links_and_expired_ones_marked(admin_client):
    now = datetime.now(UTC)

    def result(minutes_ago: int, *, expired: bool) -> Job:
        created = now - timedelta(minutes=minutes_ago)
        return Job.objects.create(
            slot_id="slot-007",
            provider="local",
            state="succeeded",
            created_at=created,
            expires_at=created + timedelta(seconds=48),
            finalized_at=created + timedelta(seconds=3),
            result_path=f"results/{minutes_ago}.jpg",
            result_mime_type="image/jpeg",
            result_expires_at=now - timedelta(minutes=1) if expired else now + timedelta(hours=70),
        )

    kept, gone = result(5, expired=False), result(90, expired=True)
    text = admin_client.get(slot_url("slot-007")).content.decode()
    assert f'data-job-id="{kept.id}"' in text and f'data-job-id="{gone.id}"' in text
    assert f'href="/public/results/{kept.id}"' in text, "a kept result can be downloaded"
    assert f'href="/public/results/{gone.id}"' not in text, "an expired one cannot"
    assert "Срок хранения истёк: результат удалён" in text


def test_the_slot_page_saves_the_share_qr_corner_and_the_fallback_slot(admin_client):
    response = admin_client.post(
        slot_url("slot-011"),
        slot_form(
            "slot-011", provider="local", operation="sepia", share_qr="bottom-left", fallback_slot="slot-012"
        ),
    )
    assert response.status_code == 302
    slot = Slot.objects.get(id="slot-011")
    assert (slot.share_qr, slot.fallback_slot_id) == ("bottom-left", "slot-012")
    page = admin_client.get(slot_url("slot-011")).content.decode()
    assert "QR-код страницы гостя" in page and "Резервный слот" in page
    assert '<option value="slot-011"' not in page, "a slot is not offered as its own fallback"


def test_a_prompt_with_an_unbalanced_brace_is_a_russian_error_on_the_prompt_field(admin_client):
    response = admin_client.post(
        slot_url("slot-012"),
        slot_form(
            "slot-012", provider="gemini", operation="image_edit", settings={"prompt": "Portrait of {name"}
        ),
    )
    assert response.status_code == 200
    settings_form = response.context["adminform"].form.settings_forms["gemini.image_edit"]
    assert settings_form.errors["prompt"][0].startswith("Непарная фигурная скобка в символе 13")
    assert Slot.objects.get(id="slot-012").version == 1
