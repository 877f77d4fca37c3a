"""Admin login throttling (django-axes): wrong logins from one address lock it out, staff unlock it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "staff-password-123"
LOGIN_URL = "/admin/login/?next=/admin/"
CHANGELIST_URL = "/admin/axes/accessattempt/"


@pytest.fixture
def staff(db: None) -> Any:
    return get_user_model().objects.create_user(
        username="staff", password=PASSWORD, is_staff=True, is_superuser=True
    )


def log_in(password: str, address: str) -> Any:
    """One login through the admin's form from ``address`` (a fresh browser each time)."""
    return Client().post(LOGIN_URL, {"username": "staff", "password": password}, REMOTE_ADDR=address)


def lock_out(address: str) -> None:
    for attempt in range(1, 6):
        response = log_in("wrong-password", address)
        expected = 429 if attempt == 5 else 200
        assert response.status_code == expected, f"wrong login {attempt} from {address}"


def test_four_wrong_logins_still_leave_the_right_password_working(staff: Any) -> None:
    for _ in range(4):
        assert log_in("wrong-password", "10.0.0.1").status_code == 200
    response = log_in(PASSWORD, "10.0.0.1")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_the_sixth_login_from_a_locked_out_address_is_refused_even_with_the_right_password(
    staff: Any,
) -> None:
    lock_out("10.0.0.1")
    browser = Client()
    response = browser.post(LOGIN_URL, {"username": "staff", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    assert "_auth_user_id" not in browser.session
    assert browser.get("/admin/", REMOTE_ADDR="10.0.0.1").status_code == 302, "not logged in"


def test_another_address_is_not_affected_by_a_lockout(staff: Any) -> None:
    lock_out("10.0.0.1")
    response = log_in(PASSWORD, "10.0.0.2")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_the_lockout_page_is_a_russian_page_in_the_admins_look(staff: Any) -> None:
    lock_out("10.0.0.1")
    response = log_in(PASSWORD, "10.0.0.1")
    page = response.content.decode()
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert '<html lang="ru"' in page
    assert 'id="site-name"' in page and "PhotoChanger" in page, "the admin's header"
    assert "Вход временно заблокирован" in page
    assert "5 неверных попыток входа" in page
    assert "на 15 минут" in page
    assert "Разблокировать выбранные адреса" in page, "says how a colleague unlocks it"
    assert 'class="language-switch"' in page


def test_a_staff_member_unlocks_a_locked_out_address_and_it_logs_in_again(
    staff: Any, admin_client: Any
) -> None:
    lock_out("10.0.0.1")
    lock_out("10.0.0.9")
    locked = AccessAttempt.objects.filter(ip_address="10.0.0.1").values_list("pk", flat=True)

    changelist = admin_client.get(CHANGELIST_URL)
    assert changelist.status_code == 200
    assert "Разблокировать выбранные адреса" in changelist.content.decode()
    response = admin_client.post(
        CHANGELIST_URL, {"action": "unlock", "_selected_action": list(locked)}, follow=True
    )
    assert "Разблокирован 1 адрес" in response.content.decode()

    assert log_in(PASSWORD, "10.0.0.1").status_code == 302, "the unlocked address logs in"
    assert log_in(PASSWORD, "10.0.0.9").status_code == 429, "the other address stays locked"


def test_the_failed_logins_page_is_for_staff_only(staff: Any, client: Any) -> None:
    anonymous = client.get(CHANGELIST_URL)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))

    guest = get_user_model().objects.create_user(username="guest", password=PASSWORD)
    client.force_login(guest)
    assert client.get(CHANGELIST_URL)["Location"].startswith(reverse("admin:login"))


def test_staff_without_the_delete_permission_cannot_unlock(staff: Any, client: Any) -> None:
    from django.contrib.auth.models import Permission

    lock_out("10.0.0.1")
    viewer = get_user_model().objects.create_user(username="viewer", password=PASSWORD, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_accessattempt"))
    client.force_login(viewer)
    page = client.get(CHANGELIST_URL)
    assert page.status_code == 200
    assert "Разблокировать выбранные адреса" not in page.content.decode()
    pks = list(AccessAttempt.objects.values_list("pk", flat=True))
    client.post(CHANGELIST_URL, {"action": "unlock", "_selected_action": pks})
    assert log_in(PASSWORD, "10.0.0.1").status_code == 429


def _login_over_http(base_url: str, password: str, address: str) -> httpx.Response:
    """The admin's login form over real HTTP from ``address`` (another loopback address)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as browser:
        form = browser.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None
        return browser.post(
            "/admin/login/?next=/admin/",
            data={"username": "staff", "password": password, "csrfmiddlewaretoken": token.group(1)},
        )


@pytest.mark.django_db(transaction=True)
def test_a_lockout_counted_by_one_web_process_holds_in_another(service: Any) -> None:
    from conftest import free_port

    get_user_model().objects.create_user(username="staff", password=PASSWORD, is_staff=True)
    first_port, second_port = free_port(), free_port()
    first = service.start_web_process(first_port, {})
    second = service.start_web_process(second_port, {})
    try:
        for _ in range(5):
            response = _login_over_http(f"http://127.0.0.1:{first_port}", "wrong-password", "127.0.0.3")
        assert response.status_code == 429
        refused = _login_over_http(f"http://127.0.0.1:{second_port}", PASSWORD, "127.0.0.3")
        assert refused.status_code == 429, "the second process sees the first one's count"
        assert "Вход временно заблокирован" in refused.text
        other = _login_over_http(f"http://127.0.0.1:{second_port}", PASSWORD, "127.0.0.4")
        assert other.status_code == 302, "uvicorn's client address is the one counted"
    finally:
        first.stop()
        second.stop()
