"""Staff pages are Russian unless a staff member switches to English in the admin header; the browser's
Accept-Language does not switch them."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory

from photochanger.middleware import StaffLanguageMiddleware

pytestmark = pytest.mark.django_db

ENGLISH_BROWSER = {"Accept-Language": "en-US,en;q=0.9"}


def choose_language(browser: Client, language: str, next_url: str) -> None:
    response = browser.post(
        "/i18n/setlang/", {"language": language, "next": next_url}, headers=ENGLISH_BROWSER
    )
    assert response.status_code == 302
    assert response["Location"] == next_url


def test_an_english_browser_gets_the_russian_login_page() -> None:
    page = Client().get("/admin/login/", headers=ENGLISH_BROWSER).content.decode()
    assert '<html lang="ru"' in page
    assert "Имя пользователя" in page
    assert "Username" not in page


def test_an_english_browser_gets_the_russian_admin_index(admin_client: Any) -> None:
    page = admin_client.get("/admin/", headers=ENGLISH_BROWSER).content.decode()
    assert '<html lang="ru"' in page
    assert "Слоты" in page


def test_choosing_english_gives_english_and_choosing_russian_gives_russian_again(admin_client: Any) -> None:
    choose_language(admin_client, "en", "/admin/")
    english = admin_client.get("/admin/", headers=ENGLISH_BROWSER).content.decode()
    assert '<html lang="en"' in english
    assert "Site administration" in english

    choose_language(admin_client, "ru", "/admin/")
    russian = admin_client.get("/admin/", headers=ENGLISH_BROWSER).content.decode()
    assert '<html lang="ru"' in russian
    assert "Слоты" in russian


def test_the_chosen_language_is_remembered_on_the_login_page_too() -> None:
    browser = Client()
    choose_language(browser, "en", "/admin/login/")
    assert "Username" in browser.get("/admin/login/").content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/login/",
        "/admin/",
        "/admin/slots/slot/",
        "/admin/slots/slot/slot-001/change/",
        "/admin/password_change/",
    ],
)
def test_the_language_switch_is_on_every_admin_page(admin_client: Any, url: str) -> None:
    browser = Client() if url == "/admin/login/" else admin_client
    page = browser.get(url).content.decode()
    assert 'class="language-switch" action="/i18n/setlang/" method="post"' in page, url
    assert 'name="language" value="ru"' in page and 'name="language" value="en"' in page
    assert f'name="next" value="{url}"' in page, "the switch comes back to the same page"
    assert 'aria-pressed="true">RU<' in page, "Russian is marked as the current language"
    assert "photochanger/admin.css" in page


def test_the_root_redirects_to_the_admin(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_pages_outside_the_admin_keep_the_browsers_language() -> None:
    middleware = StaffLanguageMiddleware(lambda request: None)  # type: ignore[arg-type]
    guest = RequestFactory().get("/guest/page", headers=ENGLISH_BROWSER)
    staff = RequestFactory().get("/admin/", headers=ENGLISH_BROWSER)
    middleware.process_request(guest)
    middleware.process_request(staff)
    assert guest.META["HTTP_ACCEPT_LANGUAGE"] == "en-US,en;q=0.9"
    assert "HTTP_ACCEPT_LANGUAGE" not in staff.META
