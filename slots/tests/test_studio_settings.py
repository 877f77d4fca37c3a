import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from slots import services
from slots.models import StudioSettings


@pytest.mark.django_db
def test_defaults_are_48_seconds_and_72_hours():
    studio = services.studio_settings_get()
    assert studio.sync_response_seconds == 48
    assert studio.result_retention_hours == 72


@pytest.mark.django_db
def test_a_second_settings_row_is_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        StudioSettings.objects.create(id=2)


@pytest.mark.django_db
@pytest.mark.parametrize("seconds", [44, 61])
def test_sync_window_outside_45_to_60_is_refused(seconds):
    with pytest.raises(ValidationError):
        services.studio_settings_update(change=services.StudioSettingsChange(sync_response_seconds=seconds))
    assert services.studio_settings_get().sync_response_seconds == 48


@pytest.mark.django_db
def test_sync_window_below_45_is_allowed_only_with_the_override(settings):
    settings.SYNC_RESPONSE_MIN_SECONDS = 3
    services.studio_settings_update(change=services.StudioSettingsChange(sync_response_seconds=5))
    assert services.studio_settings_get().sync_response_seconds == 5


@pytest.mark.django_db
def test_ingest_password_is_stored_only_as_a_hash():
    services.ingest_password_set(password="booth-secret-1")
    stored = StudioSettings.objects.values_list("ingest_password_hash", flat=True).get()
    assert "booth-secret-1" not in stored
    assert stored.count("$") >= 2  # algorithm$…$hash
    assert services.ingest_password_check(stored_hash=stored, candidate="booth-secret-1")
    assert not services.ingest_password_check(stored_hash=stored, candidate="booth-secret-2")


@pytest.mark.django_db
def test_rotating_the_ingest_password_invalidates_the_old_one():
    services.ingest_password_set(password="first-password")
    old = services.studio_settings_get().ingest_password_hash
    assert services.ingest_password_check(stored_hash=old, candidate="first-password")
    services.ingest_password_set(password="second-password")
    new_settings = services.studio_settings_get()
    assert not services.ingest_password_check(
        stored_hash=new_settings.ingest_password_hash, candidate="first-password"
    )
    assert services.ingest_password_check(
        stored_hash=new_settings.ingest_password_hash, candidate="second-password"
    )
    assert new_settings.ingest_password_rotated_at is not None


def test_no_password_configured_means_ingest_is_closed():
    assert not services.ingest_password_check(stored_hash="", candidate="")
    assert not services.ingest_password_check(stored_hash="", candidate="anything")


@pytest.mark.django_db
def test_short_ingest_password_is_refused():
    with pytest.raises(ValidationError):
        services.ingest_password_set(password="abc")


@pytest.mark.django_db
def test_bootstrap_creates_admin_and_ingest_password_once(capsys):
    from django.contrib.auth import get_user_model

    call_command("bootstrap", "--admin-password", "admin-pass-123", "--ingest-password", "ingest-pass-1")
    first = capsys.readouterr().out
    assert "admin-pass-123" in first
    assert "ingest-pass-1" in first
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password("admin-pass-123")

    call_command("bootstrap", "--admin-password", "other", "--ingest-password", "other-pass")
    second = capsys.readouterr().out
    assert "other" not in second.replace("unchanged", "")
    studio = services.studio_settings_get()
    assert services.ingest_password_check(stored_hash=studio.ingest_password_hash, candidate="ingest-pass-1")
