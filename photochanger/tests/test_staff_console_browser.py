"""The staff console's header and login in a real browser (Debian's Chromium, Playwright) against the
real service: Russian on an English browser, the RU/EN switch, the login lockout page.

With ``PHOTOCHANGER_SCREENSHOTS=<dir>`` the pages are saved there at 1366×768 and 390×844
(``Docs/screenshots/`` holds the committed ones)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conftest import SCREEN_SIZES as SIZES
from conftest import STAFF_PASSWORD as PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def english_browser(staff_browser: Any) -> Any:
    """``english_browser(size)``: a page of a browser asking for English (Accept-Language: en-US), not
    logged in, against a web process of its own (conftest's ``staff_browser``)."""

    def new_page(size: str = "desktop") -> Any:
        return staff_browser.page(size, locale="en-US", log_in=False)

    return new_page


def screenshot(page: Any, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("PHOTOCHANGER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def log_in(page: Any, password: str = PASSWORD) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize("size", SIZES)
def test_an_english_browser_gets_the_russian_console_and_switches_it_in_the_header(
    english_browser: Any, tmp_path: Path, size: str
) -> None:
    page = english_browser(size)
    page.goto("/")
    assert page.url.endswith("/admin/login/?next=/admin/"), "/ leads to the admin"
    assert page.get_attribute("html", "lang") == "ru"
    assert page.is_visible(".language-switch button[value=en]")
    assert "Имя пользователя" in page.inner_text("#content")
    screenshot(page, f"login-{size}", tmp_path)

    log_in(page)
    page.wait_for_url("**/admin/")
    assert page.get_attribute("html", "lang") == "ru"
    assert "Слоты" in page.inner_text("#content")
    assert page.is_visible(".language-switch button[value=ru][aria-pressed=true]")
    screenshot(page, f"admin-index-ru-{size}", tmp_path)

    page.click(".language-switch button[value=en]")
    page.wait_for_url("**/admin/")
    assert page.get_attribute("html", "lang") == "en"
    assert "Site administration" in page.inner_text("#content")

    page.goto("/admin/slots/slot/")
    assert page.get_attribute("html", "lang") == "en", "the choice is remembered"
    page.click(".language-switch button[value=ru]")
    page.wait_for_url("**/admin/slots/slot/")
    assert page.get_attribute("html", "lang") == "ru"


@pytest.mark.parametrize("size", SIZES)
def test_a_browser_locked_out_after_five_wrong_logins_sees_the_russian_lockout_page(
    english_browser: Any, tmp_path: Path, size: str
) -> None:
    page = english_browser(size)
    for _ in range(4):
        log_in(page, "wrong-password")
        assert page.is_visible(".errornote"), "a wrong login shows the form's error"
    log_in(page, "wrong-password")
    assert "Вход временно заблокирован" in page.inner_text("h1")
    log_in(page)
    text = page.inner_text("#content")
    assert "Вход временно заблокирован" in text, "the right password is refused too"
    assert "на 15 минут" in text
    assert page.is_visible(".language-switch")
    screenshot(page, f"login-locked-out-{size}", tmp_path)
