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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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


def schema_keys() -> list[tuple[str, str]]:
    """Every (provider, operation) that has a schema, in file name order."""
    return [(name.split(".", 1)[0], name.split(".", 1)[1]) for name in _schemas()]


# The template roles an operation can require (``x-required-template-roles``), named as staff see them
# (the same words as slots.models.TemplateRole).
TEMPLATE_ROLE_NAMES = {
    "style_reference": gettext_lazy("Style reference"),
    "frame": gettext_lazy("Frame / overlay"),
    "target": gettext_lazy("Target face (deepfake)"),
}


def validate_against_schema(
    *, provider: str, operation: str, values: dict[str, Any], template_roles: list[str]
) -> dict[str, str]:
    """Field-level problems of ``values`` under the provider/operation schema ({} = valid).

    Keyed by the setting's name (``retry_policy.max_attempts`` for a nested one), ``settings`` for the
    object as a whole, ``templates`` or ``operation``; the messages are in the active language.
    """
    schema = schema_for(provider, operation)
    if schema is None:
        known = ", ".join(operations_for(provider)) or "—"
        return {
            "operation": _("Unknown operation “%(operation)s” for %(provider)s; choose one of: %(known)s.")
            % {"operation": operation, "provider": provider, "known": known}
        }
    problems: dict[str, str] = {}
    for error in sorted(Draft202012Validator(schema).iter_errors(values), key=lambda e: list(e.path)):
        field, message = _describe(error)
        problems.setdefault(field, message)
    for role, count in schema.get("x-required-template-roles", {}).items():
        if template_roles.count(role) < count:
            name = TEMPLATE_ROLE_NAMES.get(role, role)
            problems.setdefault(
                "templates",
                _("Bind a template with the role “%(role)s” (%(code)s) to this slot.")
                % {"role": name, "code": role},
            )
    return problems


def _describe(error: SchemaError) -> tuple[str, str]:
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "settings"
        prefix = ".".join(str(part) for part in error.path)
        return (f"{prefix}.{missing}" if prefix else missing), _("This field is required.")
    if error.validator == "additionalProperties":
        unknown = error.message.split("(")[-1].rstrip(")")
        return "settings", _("Unknown field(s): %(names)s.") % {"names": unknown}
    field = ".".join(str(part) for part in error.path) or "settings"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "enum":
        options = ", ".join(str(option) for option in schema.get("enum", []))
        return field, _("One of: %(options)s.") % {"options": options}
    if error.validator in {"minimum", "maximum"}:
        return field, _("Must be between %(low)s and %(high)s.") % {
            "low": schema.get("minimum", "…"),
            "high": schema.get("maximum", "…"),
        }
    if error.validator in {"minLength", "maxLength"}:
        if schema.get("minLength") and not error.instance:
            return field, _("Must not be empty.")
        return field, _("At most %(count)s characters.") % {"count": schema.get("maxLength")}
    if error.validator == "type":
        kind = _TYPE_NAMES.get(str(schema.get("type")), str(schema.get("type")))
        return field, _("Must be %(kind)s.") % {"kind": kind}
    if error.validator == "pattern":
        examples = schema.get("examples") or []
        if examples:
            return field, _("Not a valid value; e.g. %(example)s.") % {"example": examples[0]}
        return field, _("Not a valid value.")
    return field, error.message


_TYPE_NAMES = {
    "integer": gettext_lazy("a whole number"),
    "number": gettext_lazy("a number"),
    "string": gettext_lazy("text"),
    "boolean": gettext_lazy("yes or no"),
    "object": gettext_lazy("a group of settings"),
}
