import pytest

from slots.models import Slot, StudioSettings
from slots.services import slots_ensure_static


@pytest.mark.django_db
def test_data_migration_creates_exactly_fifteen_static_slots():
    ids = list(Slot.objects.order_by("id").values_list("id", flat=True))
    assert ids == [f"slot-{n:03d}" for n in range(1, 16)]


@pytest.mark.django_db
def test_static_slots_start_inactive_with_the_local_provider():
    assert not Slot.objects.filter(is_active=True).exists()
    assert set(Slot.objects.values_list("provider", flat=True)) == {"local"}


@pytest.mark.django_db
def test_data_migration_creates_the_settings_singleton():
    assert StudioSettings.objects.count() == 1
    assert StudioSettings.objects.get().pk == 1


@pytest.mark.django_db
def test_ensure_static_is_idempotent():
    assert slots_ensure_static() == 0
    Slot.objects.filter(id="slot-007").delete()
    assert slots_ensure_static() == 1
    assert Slot.objects.count() == 15


@pytest.mark.django_db
def test_slot_ingest_url_uses_public_base_url(settings):
    settings.PUBLIC_BASE_URL = "https://booth.example.com"
    assert Slot.objects.get(id="slot-003").ingest_url == "https://booth.example.com/ingest/slot-003"
