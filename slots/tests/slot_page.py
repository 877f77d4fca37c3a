"""The slot page's form as a browser posts it, for test-client tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from slots.models import Slot


def settings_fields(provider: str, operation: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Provider settings as the generated form's inputs: ``settings-<provider>-<operation>-<name>``."""
    fields: dict[str, Any] = {}
    for name, value in settings.items():
        if isinstance(value, Mapping):
            for child, child_value in value.items():
                fields[f"settings-{provider}-{operation}-{name}__{child}"] = child_value
        else:
            fields[f"settings-{provider}-{operation}-{name}"] = value
    return fields


def slot_form(
    slot_id: str,
    bindings: Iterable[Mapping[str, Any]] = (),
    settings: Mapping[str, Any] | None = None,
    **values: Any,
) -> dict[str, Any]:
    """The slot page's form; ``bindings`` are the template inline's rows, ``settings`` the provider
    settings (for the posted provider and operation; the slot's saved ones when not given)."""
    slot = Slot.objects.get(id=slot_id)
    bindings = list(bindings)
    form: dict[str, Any] = {
        "display_name": slot.display_name,
        "provider": slot.provider,
        "operation": slot.operation or "sepia",
        "size_limit_mb": slot.size_limit_mb,
        "share_qr": slot.share_qr,
        "fallback_slot": slot.fallback_slot_id or "",
        "seen_version": slot.version,
        "template_bindings-TOTAL_FORMS": len(bindings),
        "template_bindings-INITIAL_FORMS": sum(1 for row in bindings if row.get("id")),
        "template_bindings-MIN_NUM_FORMS": 0,
        "template_bindings-MAX_NUM_FORMS": 1000,
    }
    for index, row in enumerate(bindings):
        form.update({f"template_bindings-{index}-{name}": value for name, value in row.items()})
        form[f"template_bindings-{index}-slot"] = slot_id
    form.update(values)
    chosen = settings if settings is not None else slot.settings
    form.update(settings_fields(form["provider"], form["operation"], chosen))
    return {name: value for name, value in form.items() if value is not False}


def studio_settings_form(**values: Any) -> dict[str, Any]:
    """The Studio settings page's form with a new install's values; ``values`` override fields."""
    form: dict[str, Any] = {
        "sync_response_seconds": 48,
        "result_retention_hours": 72,
        "public_link_ttl_seconds": 60,
        "history_retention_days": 90,
        "keep_late_results": "on",
        "late_result_grace_seconds": 120,
        "provider_cap_gemini": 64,
        "provider_cap_openai": 32,
        "provider_cap_turbotext": 32,
    }
    return {**form, **values}
