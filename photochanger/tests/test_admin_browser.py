"""Staff use the admin in a real browser (Debian's Chromium driven by Playwright) against the real
service (uvicorn, ASGI, PostgreSQL): log in, configure a slot, bind a frame in the same save, get
field-level errors, in Russian."""

from __future__ import annotations

from typing import Any

import pytest

from slots.models import Slot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser_page(staff_browser: Any) -> Any:
    """A staff member logged in, in Russian, to a web process of its own (conftest's ``staff_browser``)."""
    return staff_browser.page()


def test_staff_configures_a_slot_in_the_browser(service: Any, browser_page: Any, tmp_path: Any) -> None:
    page = browser_page
    assert "Слоты" in page.content()
    page.goto("/admin/slots/slot/slot-004/change/")
    assert f"{service.base_url}/ingest/slot-004" in page.content(), "the slot page shows its ingest URL"

    page.select_option("#id_provider", "gemini")
    page.select_option("#id_operation", "image_edit")
    page.fill("#id_settings-gemini-image_edit-prompt", "акварельный портрет")
    page.select_option("#id_settings-gemini-image_edit-aspect_ratio", "3:4")
    page.check("#id_is_active")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/slots/slot/")
    page.screenshot(path=str(tmp_path / "slot-saved.png"))

    slot = Slot.objects.get(id="slot-004")
    assert (slot.provider, slot.is_active, slot.settings["prompt"]) == ("gemini", True, "акварельный портрет")
    assert slot.updated_by is not None and slot.updated_by.username == "staff"


def test_invalid_settings_show_field_errors_and_keep_the_slot_inactive(
    service: Any, browser_page: Any
) -> None:
    page = browser_page
    page.goto("/admin/slots/slot/slot-005/change/")
    page.select_option("#id_provider", "openai")
    page.select_option("#id_operation", "image_edit")
    page.select_option("#id_settings-openai-image_edit-size", "1024x1536")
    page.check("#id_is_active")
    page.click("input[name=_save]")
    errors = page.inner_text(".field-prompt .errorlist")
    assert "Это поле обязательно." in errors
    assert not Slot.objects.get(id="slot-005").is_active


def test_staff_bind_a_frame_and_activate_a_frame_slot_in_one_save(service: Any, browser_page: Any) -> None:
    from django.core.files.base import ContentFile

    from jobs.tests.booth import make_png
    from slots.models import TemplateMedia
    from slots.services import template_media_save

    frame = TemplateMedia(name="Рамка свадебная")
    frame.file.save("frame.png", ContentFile(make_png(64, 64, transparent_center=True)), save=False)
    template_media_save(template=frame)

    page = browser_page
    page.goto("/admin/slots/slot/slot-009/change/")
    assert "Шаблоны слота" in page.content()
    assert "Добавить ещё: Шаблон" in page.content(), "the inline's add link reads right in Russian"
    page.select_option("#id_provider", "local")
    page.select_option("#id_operation", "frame")
    page.select_option("#id_settings-local-frame-output_format", "png")
    page.check("#id_is_active")
    page.click("#template_bindings-group .add-row a")
    page.click("#template_bindings-0 .select2-selection")
    page.fill(".select2-search__field", "Рамка")
    page.click(".select2-results__option >> text=Рамка свадебная")
    page.select_option("#id_template_bindings-0-role", "frame")
    page.click("input[name=_save]")
    page.wait_for_load_state()
    assert page.url.endswith("/admin/slots/slot/"), page.inner_text("body")[:3000]
    assert "успешно изменен" in page.inner_text(".messagelist")

    slot = Slot.objects.get(id="slot-009")
    assert (slot.provider, slot.operation, slot.is_active) == ("local", "frame", True)
    assert list(slot.template_bindings.values_list("template__name", "role")) == [
        ("Рамка свадебная", "frame")
    ]
