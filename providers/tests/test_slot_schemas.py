"""Slot settings contracts: every provider/operation has a JSON Schema, enforced on every save."""

import json

import pytest
from django.core.exceptions import ValidationError

from providers.kinds import ProviderKind
from providers.registry import get_provider, validate_slot_configuration
from providers.schemas import operations_for, schema_dir, validate_against_schema
from slots.models import Slot
from slots.services import slot_update

EXPECTED = {
    "local": {"grayscale", "sepia", "frame", "resize"},
    "gemini": {"image_edit"},
    "openai": {"image_edit"},
    "turbotext": {"image2image", "mix_images", "deepfake_photo"},
}


def test_every_provider_operation_has_a_schema_file():
    names = {path.stem for path in schema_dir().glob("*.json")}
    assert names == {f"{provider}.{operation}" for provider, ops in EXPECTED.items() for operation in ops}
    for path in schema_dir().glob("*.json"):
        schema = json.loads(path.read_text())
        assert schema["$schema"].endswith("2020-12/schema")
        assert schema["additionalProperties"] is False


def test_every_provider_kind_has_an_adapter_with_its_operations():
    assert set(ProviderKind.values) == set(EXPECTED)
    for provider, operations in EXPECTED.items():
        assert get_provider(provider).kind == provider
        assert set(operations_for(provider)) == operations
        assert get_provider(provider).default_operation in operations


@pytest.mark.parametrize(
    ("provider", "operation", "values", "field"),
    [
        ("gemini", "image_edit", {}, "prompt"),
        ("gemini", "image_edit", {"prompt": "x", "aspect_ratio": "7:3"}, "aspect_ratio"),
        (
            "gemini",
            "image_edit",
            {"prompt": "x", "image_size": "8K", "model": "gemini-3-pro-image-preview"},
            "image_size",
        ),
        ("gemini", "image_edit", {"prompt": "x", "image_size": "2K"}, "image_size"),
        ("gemini", "image_edit", {"prompt": "x", "temperature": 1}, "settings"),
        ("openai", "image_edit", {"prompt": "x", "size": "800x600"}, "size"),
        (
            "openai",
            "image_edit",
            {"prompt": "x", "output_format": "png", "output_compression": 50},
            "output_compression",
        ),
        ("openai", "image_edit", {"prompt": "x", "quality": "ultra"}, "quality"),
        ("turbotext", "image2image", {"prompt": "x", "strength": 95}, "strength"),
        ("turbotext", "image2image", {"prompt": "x", "scale": 0}, "scale"),
        ("turbotext", "image2image", {"prompt": "x", "seed": "abc"}, "seed"),
        ("turbotext", "mix_images", {}, "templates"),
        ("turbotext", "deepfake_photo", {}, "templates"),
        ("local", "frame", {}, "templates"),
        ("local", "resize", {}, "max_side"),
        ("local", "sepia", {"quality": 100}, "quality"),
        ("local", "vignette", {}, "operation"),
    ],
)
def test_invalid_settings_get_a_field_level_message(provider, operation, values, field):
    problems = validate_slot_configuration(
        provider=provider, operation=operation, settings=values, template_roles=[]
    )
    assert field in problems, problems
    assert problems[field]


@pytest.mark.parametrize(
    ("provider", "operation", "values", "roles"),
    [
        (
            "gemini",
            "image_edit",
            {"prompt": "x", "model": "gemini-3-pro-image-preview", "image_size": "4K"},
            [],
        ),
        (
            "gemini",
            "image_edit",
            {"prompt": "x", "aspect_ratio": "9:16", "retry_policy": {"max_attempts": 3}},
            [],
        ),
        (
            "openai",
            "image_edit",
            {"prompt": "x", "size": "1024x1536", "output_format": "webp", "output_compression": 80},
            [],
        ),
        (
            "turbotext",
            "image2image",
            {"prompt": "x", "strength": 40, "seed": 42, "scale": 7.5, "negative_prompt": "blur"},
            [],
        ),
        ("turbotext", "mix_images", {"prompt": "disney"}, ["style_reference"]),
        ("turbotext", "deepfake_photo", {"face_restore": False}, ["target"]),
        ("local", "frame", {"output_format": "png"}, ["frame"]),
    ],
)
def test_valid_settings_pass(provider, operation, values, roles):
    assert (
        validate_slot_configuration(
            provider=provider, operation=operation, settings=values, template_roles=roles
        )
        == {}
    )


def test_schema_messages_name_the_allowed_values():
    problems = validate_against_schema(
        provider="openai", operation="image_edit", values={"prompt": "x", "size": "1x1"}, template_roles=[]
    )
    assert "1024x1024" in problems["size"]


@pytest.mark.django_db
def test_an_active_slot_cannot_be_saved_with_settings_its_provider_rejects():
    slot = Slot.objects.get(id="slot-010")
    with pytest.raises(ValidationError) as error:
        slot_update(
            slot=slot,
            fields={
                "provider": "openai",
                "operation": "image_edit",
                "settings": {"size": "huge"},
                "is_active": True,
            },
        )
    messages = " ".join(error.value.messages)
    assert "prompt" in messages and "size" in messages
    assert not Slot.objects.get(id="slot-010").is_active
