"""Slot settings contracts: one JSON Schema per provider/operation in ``spec/contracts/schemas``.

Every save (admin, ``configure_slot``) validates the slot's settings against its schema and reports
field-level messages. ``x-required-template-roles`` (our extension) names template roles an operation
needs bound to the slot, e.g. ``{"frame": 1}``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError


def schema_dir() -> Path:
    return Path(settings.BASE_DIR) / "spec" / "contracts" / "schemas"


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    loaded = {}
    for path in sorted(schema_dir().glob("*.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        loaded[path.stem] = schema
    return loaded


def schema_for(provider: str, operation: str) -> dict[str, Any] | None:
    return _schemas().get(f"{provider}.{operation}")


def operations_for(provider: str) -> list[str]:
    return [name.split(".", 1)[1] for name in _schemas() if name.split(".", 1)[0] == provider]


def validate_against_schema(
    *, provider: str, operation: str, values: dict[str, Any], template_roles: list[str]
) -> dict[str, str]:
    """Field-level problems of ``values`` under the provider/operation schema ({} = valid)."""
    schema = schema_for(provider, operation)
    if schema is None:
        known = ", ".join(operations_for(provider)) or "none"
        return {"operation": f"Unknown operation {operation!r} for {provider}; choose one of: {known}."}
    problems: dict[str, str] = {}
    for error in sorted(Draft202012Validator(schema).iter_errors(values), key=lambda e: list(e.path)):
        field, message = _describe(error)
        problems.setdefault(field, message)
    for role, count in schema.get("x-required-template-roles", {}).items():
        if template_roles.count(role) < count:
            problems.setdefault("templates", f"Bind a template with the role '{role}' to this slot.")
    return problems


def _describe(error: SchemaError) -> tuple[str, str]:
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "settings"
        return missing, "This field is required."
    if error.validator == "additionalProperties":
        return "settings", f"Unknown field(s): {error.message.split('(')[-1].rstrip(')')}."
    field = ".".join(str(part) for part in error.path) or "settings"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "enum":
        return field, "One of: " + ", ".join(str(option) for option in schema.get("enum", [])) + "."
    if error.validator in {"minimum", "maximum"}:
        return field, f"Must be between {schema.get('minimum', '…')} and {schema.get('maximum', '…')}."
    if error.validator in {"minLength", "maxLength"}:
        if schema.get("minLength") and not error.instance:
            return field, "Must not be empty."
        return field, f"At most {schema.get('maxLength')} characters."
    if error.validator == "type":
        return field, f"Must be of type {schema.get('type')}."
    if error.validator == "pattern":
        examples = schema.get("examples") or []
        hint = f" e.g. {examples[0]}" if examples else ""
        return field, f"Not a valid value{hint}."
    return field, error.message
