"""The studio settings and slot pages: every mistake comes back as a form error, never a 500."""

import pytest
from django.urls import reverse

from slots import services

pytestmark = pytest.mark.django_db

SETTINGS_URL = reverse("admin:slots_studiosettings_change", args=[1])


def settings_form(**values):
    form = {"sync_response_seconds": 48, "result_retention_hours": 72, "public_link_ttl_seconds": 60}
    return {**form, **values}


@pytest.mark.parametrize("seconds", [44, 61])
def test_an_out_of_range_sync_window_is_a_field_error_and_nothing_is_saved(admin_client, settings, seconds):
    settings.SYNC_RESPONSE_MIN_SECONDS = 45
    services.studio_settings_get()
    response = admin_client.post(
        SETTINGS_URL, settings_form(sync_response_seconds=seconds, result_retention_hours=24)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["sync_response_seconds"] == [
        "Окно синхронного ответа должно быть от 45 до 60 секунд."
    ]
    studio = services.studio_settings_get()
    assert (studio.sync_response_seconds, studio.result_retention_hours) == (48, 72)
