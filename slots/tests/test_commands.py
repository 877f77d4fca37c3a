"""configure_slot / configure_settings / first_run: scripted set-up validated as the admin validates."""

import pytest
from django.core.management import CommandError, call_command

from providers.services import provider_key_get, provider_key_set
from slots.models import Slot, StudioSettings
from slots.services import ingest_password_check

pytestmark = pytest.mark.django_db


def test_configure_slot_activates_a_valid_gemini_slot():
    provider_key_set(provider="gemini", api_key="AIza-command-test")
    call_command(
        "configure_slot", "slot-004", "--provider", "gemini", "--operation", "image_edit",
        "--settings", '{"prompt": "watercolor", "aspect_ratio": "3:4"}', "--active",
    )  # fmt: skip
    slot = Slot.objects.get(id="slot-004")
    assert (slot.provider, slot.is_active, slot.settings["prompt"]) == ("gemini", True, "watercolor")
    assert slot.version == 2


def test_configure_slot_refuses_to_activate_gemini_without_a_prompt():
    with pytest.raises(CommandError, match="prompt"):
        call_command("configure_slot", "slot-004", "--provider", "gemini", "--settings", "{}", "--active")
    assert not Slot.objects.get(id="slot-004").is_active


def test_configure_slot_refuses_image_size_for_gemini_2_5():
    with pytest.raises(CommandError, match="image_size"):
        call_command(
            "configure_slot", "slot-004", "--provider", "gemini",
            "--settings", '{"prompt": "p", "image_size": "2K"}', "--active",
        )  # fmt: skip


def test_configure_slot_refuses_a_frame_without_a_bound_frame_template():
    with pytest.raises(CommandError, match="frame"):
        call_command("configure_slot", "slot-006", "--provider", "local", "--operation", "frame", "--active")


@pytest.mark.parametrize(("provider", "operation"), [("gemini", "image_edit"), ("turbotext", "image2image")])
def test_configure_slot_refuses_to_activate_a_provider_without_an_api_key(settings, provider, operation):
    settings.GEMINI_API_KEY = settings.TURBOTEXT_API_KEY = ""
    with pytest.raises(CommandError, match=r"^is_active: .*API"):
        call_command(
            "configure_slot", "slot-005", "--provider", provider, "--operation", operation,
            "--settings", '{"prompt": "p"}', "--active",
        )  # fmt: skip
    assert not Slot.objects.get(id="slot-005").is_active


def test_configure_slot_rejects_unknown_slots_and_bad_json():
    with pytest.raises(CommandError, match="slot-001"):
        call_command("configure_slot", "slot-016", "--provider", "local")
    with pytest.raises(CommandError, match="JSON"):
        call_command("configure_slot", "slot-001", "--settings", "{not json")


def test_inactive_slot_may_hold_incomplete_settings():
    call_command("configure_slot", "slot-007", "--provider", "gemini", "--settings", "{}", "--inactive")
    assert Slot.objects.get(id="slot-007").provider == "gemini"


def test_optimistic_locking_refuses_a_stale_edit():
    from django.core.exceptions import ValidationError

    from slots.services import slot_update

    stale = Slot.objects.get(id="slot-008")
    slot_update(slot=Slot.objects.get(id="slot-008"), fields={"display_name": "first"})
    with pytest.raises(ValidationError):
        slot_update(slot=stale, fields={"display_name": "second"})
    assert Slot.objects.get(id="slot-008").display_name == "first"


def test_configure_settings_sets_password_window_retention_and_keys(settings):
    settings.SYNC_RESPONSE_MIN_SECONDS = 45
    call_command(
        "configure_settings", "--ingest-password", "new-booth-pass", "--sync-seconds", "50",
        "--result-retention-hours", "24", "--provider-key", "gemini=AIza-123",
    )  # fmt: skip
    studio = StudioSettings.objects.get()
    assert (studio.sync_response_seconds, studio.result_retention_hours) == (50, 24)
    assert ingest_password_check(stored_hash=studio.ingest_password_hash, candidate="new-booth-pass")
    assert provider_key_get(provider="gemini") == "AIza-123"


def test_configure_settings_refuses_a_window_below_45_without_the_override(settings):
    settings.SYNC_RESPONSE_MIN_SECONDS = 45
    with pytest.raises(CommandError, match=r"45.*60"):
        call_command("configure_settings", "--sync-seconds", "10")
    with pytest.raises(CommandError, match="NAME=KEY"):
        call_command("configure_settings", "--provider-key", "nosuch=1")


def test_configure_settings_sets_provider_caps_and_keeps_the_others(settings, capsys):
    settings.PROVIDER_CONCURRENCY = {"gemini": 64, "openai": 32, "turbotext": 32}
    call_command("configure_settings", "--provider-cap", "gemini=10", "--provider-cap", "openai=5")
    assert StudioSettings.objects.get().provider_concurrency == {"gemini": 10, "openai": 5, "turbotext": 32}
    assert "provider caps gemini=10, openai=5, turbotext=32" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("cap", "message"),
    [
        ("local=5", "NAME=N"),
        ("gemini", "NAME=N"),
        ("gemini=many", "NAME=N"),
        ("gemini=0", r"1\D+1000"),
        ("openai=1001", r"1\D+1000"),
    ],
)
def test_configure_settings_refuses_a_bad_provider_cap_and_saves_nothing(settings, cap, message):
    settings.PROVIDER_CONCURRENCY = {"gemini": 64, "openai": 32, "turbotext": 32}
    with pytest.raises(CommandError, match=message):
        call_command("configure_settings", "--provider-cap", cap, "--sync-seconds", "50")
    studio = StudioSettings.objects.get()
    assert (studio.provider_concurrency["gemini"], studio.provider_concurrency["openai"]) == (64, 32)
    assert studio.sync_response_seconds == 48


def test_first_run_configures_slot_001_once():
    call_command("first_run")
    slot = Slot.objects.get(id="slot-001")
    assert (slot.provider, slot.operation, slot.is_active) == ("local", "sepia", True)
    Slot.objects.filter(id="slot-001").update(operation="grayscale")
    call_command("first_run")
    assert Slot.objects.get(id="slot-001").operation == "grayscale"


def test_configure_slot_sets_the_share_qr_corner_and_a_fallback_slot():
    call_command("configure_slot", "slot-003", "--share-qr", "bottom-right", "--fallback-slot", "slot-009")
    slot = Slot.objects.get(id="slot-003")
    assert (slot.share_qr, slot.fallback_slot_id) == ("bottom-right", "slot-009")
    call_command("configure_slot", "slot-003", "--share-qr", "off", "--fallback-slot", "none")
    slot = Slot.objects.get(id="slot-003")
    assert (slot.share_qr, slot.fallback_slot_id) == ("off", None)


def test_configure_slot_refuses_an_unknown_corner_an_unknown_fallback_and_itself_as_fallback():
    with pytest.raises(CommandError):
        call_command("configure_slot", "slot-003", "--share-qr", "top-left")
    with pytest.raises(CommandError, match="slot-099"):
        call_command("configure_slot", "slot-003", "--fallback-slot", "slot-099")
    with pytest.raises(CommandError, match=r"^fallback_slot: "):
        call_command("configure_slot", "slot-003", "--fallback-slot", "slot-003")
    assert Slot.objects.get(id="slot-003").fallback_slot_id is None


def test_configure_settings_switches_late_results_and_their_grace():
    call_command("configure_settings", "--keep-late-results", "off", "--late-result-grace-seconds", "30")
    studio = StudioSettings.objects.get()
    assert (studio.keep_late_results, studio.late_result_grace_seconds) == (False, 30)
    with pytest.raises(CommandError, match="late_result_grace_seconds"):
        call_command("configure_settings", "--late-result-grace-seconds", "0")


def test_configure_slot_refuses_a_fallback_slot_that_could_not_take_photos():
    call_command(
        "configure_slot", "slot-010", "--provider", "gemini", "--operation", "image_edit", "--settings", "{}"
    )
    with pytest.raises(CommandError, match=r"^fallback_slot: slot-010 "):
        call_command("configure_slot", "slot-003", "--fallback-slot", "slot-010")
