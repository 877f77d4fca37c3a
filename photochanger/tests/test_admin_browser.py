"""Staff use the admin in a real browser (Debian's Chromium driven by Playwright) against the real
service (uvicorn, ASGI, PostgreSQL): log in, configure a slot, bind a frame in the same save, get
field-level errors, in Russian."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from slots.models import Slot

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is installed by scripts/test"),
]
# Playwright's sync API runs an event loop in this thread; the ORM calls in these tests are plain
# blocking calls made between browser steps, never from inside that loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "staff-password-123"


@pytest.fixture
def browser_page(service: Any, studio: Any) -> Iterator[Any]:
    """A staff member logged in to a web process of its own; page URLs are relative to it."""
    from django.contrib.auth import get_user_model
    from django.db import connections
    from playwright.sync_api import sync_playwright

    from conftest import free_port

    get_user_model().objects.create_superuser(username="staff", email="", password=PASSWORD)
    # A fresh process per test: the session's web process caches content type ids, which the database
    # flush between tests renumbers, so its admin history entries (written on every save) would break.
    port = free_port()
    web = service.start_web_process(port, {})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )  # fmt: skip
        context = browser.new_context(
            base_url=f"http://127.0.0.1:{port}", locale="ru-RU", viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.goto("/admin/login/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        yield page
        browser.close()
        # ORM calls made while Playwright's loop is active get their own connection; close it here so
        # the test database can be dropped at the end of the run.
        connections.close_all()
    web.stop()


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
