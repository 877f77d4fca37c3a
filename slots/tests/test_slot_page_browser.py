"""The slot pages in a real browser (Debian's Chromium driven by Playwright) against the real service,
as a staff member in Russian: configure a slot through the generated settings form without any JSON,
upload and bind a frame on the slot page, activate in one save, and copy the ingest URL.

``PHOTOCHANGER_SCREENSHOTS=Docs/screenshots`` also writes the slot page, slot list and Studio settings
screenshots (desktop 1366×768 and phone 390×844) of ``test_screenshots_of_the_slot_pages``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slots.models import Slot

pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def open_browser(staff_browser: Any) -> Callable[..., Any]:
    """``open_browser(viewport)``: a logged-in staff page with clipboard access (conftest's
    ``staff_browser``: a web process of its own); page URLs are relative to it."""

    def open_page(viewport: Any = DESKTOP) -> Any:
        size = "phone" if viewport == PHONE else "desktop"
        return staff_browser.page(size, permissions=["clipboard-read", "clipboard-write"])

    return open_page


def frame_png(path: Path) -> Path:
    from jobs.tests.booth import make_png

    path.write_bytes(make_png(96, 128, transparent_center=True))
    return path


def test_staff_configure_a_frame_slot_through_the_generated_form_and_bind_an_uploaded_frame(
    open_browser: Callable[..., Any], tmp_path: Path
) -> None:
    page = open_browser()
    page.goto("/admin/slots/slot/slot-002/change/")
    assert page.locator("#id_settings").count() == 0, "no JSON box"

    # Another provider: its operations and its settings appear at once, without a save.
    page.select_option("#id_provider", "gemini")
    assert page.eval_on_selector_all("#id_operation option", "os => os.map(o => o.value)") == ["image_edit"]
    prompt = page.locator("#id_settings-gemini-image_edit-prompt")
    assert prompt.is_visible() and prompt.evaluate("element => element.tagName") == "TEXTAREA"
    assert page.locator("#id_settings-gemini-image_edit-model").input_value() == "gemini-2.5-flash-image"
    assert page.locator("#id_settings-gemini-image_edit-aspect_ratio").evaluate(
        "element => element.tagName"
    ) == ("SELECT")

    page.select_option("#id_provider", "local")
    page.select_option("#id_operation", "frame")
    assert not prompt.is_visible()
    group = page.locator('[data-settings-for="local.frame"]')
    assert group.is_visible()
    assert "Рамка поверх фото" in group.inner_text()
    assert "От 1 до 95. По умолчанию: 90." in group.inner_text(), "range and default in the help text"
    page.select_option("#id_settings-local-frame-output_format", "png")
    page.fill("#id_settings-local-frame-quality", "80")
    page.check("#id_is_active")

    # A new frame, uploaded and bound on this page, in the same save.
    page.click("#template_bindings-group .add-row a")
    page.set_input_files("#id_template_bindings-0-new_file", str(frame_png(tmp_path / "Рамка-свадьба.png")))
    page.select_option("#id_template_bindings-0-role", "frame")
    page.click("input[name=_save]")
    page.wait_for_load_state()
    assert page.url.endswith("/admin/slots/slot/"), page.inner_text("body")[:3000]
    assert "успешно изменен" in page.inner_text(".messagelist")

    slot = Slot.objects.get(id="slot-002")
    assert (slot.provider, slot.operation, slot.is_active) == ("local", "frame", True)
    assert slot.settings == {"output_format": "png", "quality": 80}
    assert list(slot.template_bindings.values_list("template__name", "role")) == [("Рамка-свадьба", "frame")]

    # The saved settings and the frame's preview, as the next visit shows them.
    page.goto("/admin/slots/slot/slot-002/change/")
    assert page.locator("#id_operation").input_value() == "frame"
    assert page.locator("#id_settings-local-frame-output_format").input_value() == "png"
    assert page.locator("#id_settings-local-frame-quality").input_value() == "80"
    preview = page.locator("#template_bindings-0 img.template-preview")
    preview.wait_for()
    assert preview.evaluate("image => image.complete && image.naturalWidth > 0")


def test_a_setting_the_provider_rejects_is_shown_on_its_field(open_browser: Callable[..., Any]) -> None:
    page = open_browser()
    page.goto("/admin/slots/slot/slot-005/change/")
    page.select_option("#id_provider", "turbotext")
    page.select_option("#id_operation", "image2image")
    page.check("#id_is_active")
    page.click("input[name=_save]")
    page.wait_for_load_state()
    error = page.locator(".field-prompt .errorlist")
    assert error.inner_text() == "Это поле обязательно."
    assert page.locator('[data-settings-for="turbotext.image2image"]').is_visible()
    assert not Slot.objects.get(id="slot-005").is_active


def test_the_copy_buttons_put_the_ingest_url_on_the_clipboard(
    open_browser: Callable[..., Any], service: Any
) -> None:
    page = open_browser()
    url = f"{service.base_url}/ingest/slot-003"
    page.goto("/admin/slots/slot/slot-003/change/")
    button = page.locator(".booth-setup button[data-copy]")
    assert button.get_attribute("data-copy") == url
    button.click()
    assert page.evaluate("navigator.clipboard.readText()") == url
    assert button.inner_text() == "Скопировано"

    page.goto("/admin/slots/slot/")
    page.evaluate("navigator.clipboard.writeText('')")
    page.locator(f'#result_list button[data-copy="{service.base_url}/ingest/slot-007"]').click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{service.base_url}/ingest/slot-007"


@pytest.mark.skipif(
    not os.environ.get("PHOTOCHANGER_SCREENSHOTS"), reason="PHOTOCHANGER_SCREENSHOTS=<folder> takes them"
)
def test_screenshots_of_the_slot_pages(open_browser: Callable[..., Any], tmp_path: Path) -> None:
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from jobs.models import Job
    from jobs.tests.booth import make_png
    from slots import services
    from slots.models import SlotTemplateBinding, TemplateMedia

    folder = Path(os.environ["PHOTOCHANGER_SCREENSHOTS"])
    folder.mkdir(parents=True, exist_ok=True)
    frame = TemplateMedia(name="Рамка «Свадьба»")
    frame.file.save("frame.png", ContentFile(make_png(96, 128, transparent_center=True)), save=False)
    services.template_media_save(template=frame)
    SlotTemplateBinding.objects.create(slot_id="slot-002", template=frame, role="frame")
    services.slot_update(
        slot=Slot.objects.get(id="slot-002"),
        fields={"display_name": "Свадьба, зал 1", "provider": "local", "operation": "frame",
                "settings": {"output_format": "jpeg", "quality": 90}, "is_active": True},
    )  # fmt: skip
    services.slot_update(
        slot=Slot.objects.get(id="slot-003"),
        fields={"display_name": "Акварель", "provider": "gemini", "operation": "image_edit",
                "settings": {"prompt": "Акварельный портрет", "model": "gemini-2.5-flash-image"},
                "is_active": True},
    )  # fmt: skip
    now = timezone.now()
    for minutes, state in enumerate(["succeeded"] * 5 + ["timeout", "failed"]):
        created = now - timedelta(minutes=minutes + 1)
        Job.objects.create(
            slot_id="slot-003", provider="gemini", state=state, created_at=created,
            expires_at=created + timedelta(seconds=48),
        )  # fmt: skip

    for name, viewport in [("desktop", DESKTOP), ("phone", PHONE)]:
        page = open_browser(viewport)
        page.goto("/admin/slots/slot/slot-002/change/")
        page.screenshot(path=str(folder / f"slot-page-{name}.png"), full_page=True)
        page.goto("/admin/slots/slot/")
        page.screenshot(path=str(folder / f"slot-list-{name}.png"), full_page=True)
        page.goto("/admin/slots/studiosettings/")
        page.screenshot(path=str(folder / f"studio-settings-{name}.png"), full_page=True)
