"""The slot page's provider settings as a real form, generated from the provider/operation's JSON Schema.

The schema files in ``spec/contracts/schemas`` stay the one definition: each property becomes a form
field (its ``title`` the label, its ``description`` with range and default the help text; ``enum`` a
choice, ``examples`` suggestions, ``x-widget: textarea`` a large text area; a nested object one field per
property, named ``parent__child``). The form only turns the inputs into typed values; whether they are
acceptable is decided by the same schema validation as every other save
(``slots.services.slot_configuration_problems``), whose messages are put back on these fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django import forms
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from providers.schemas import schema_for

# ``retry_policy.max_attempts`` in the schema and in validation messages; ``retry_policy__max_attempts``
# as a form field.
NESTED = "__"


def schema_text(text: str | None) -> str:
    """A schema title or description in the active language (listed in ``providers.schema_text``)."""
    return gettext(text) if text else ""


class SuggestionsInput(forms.TextInput):
    """A text input with a list of suggested values (``<datalist>``): choose one or type another."""

    def __init__(self, suggestions: list[str], attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.suggestions = suggestions

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        list_id = f"{(attrs or {}).get('id') or name}_suggestions"
        field = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        options = format_html_join(
            "", '<option value="{}"></option>', ((option,) for option in self.suggestions)
        )
        return format_html('{}<datalist id="{}">{}</datalist>', field, list_id, options)


def _help_text(prop: Mapping[str, Any], required: bool) -> str:
    parts = [schema_text(prop.get("description"))]
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and high is not None:
        parts.append(
            gettext("From %(low)s to %(high)s.") % {"low": number_format(low), "high": number_format(high)}
        )
    elif low is not None:
        parts.append(gettext("At least %(low)s.") % {"low": number_format(low)})
    if "default" in prop:
        default = prop["default"]
        if isinstance(default, bool):
            shown = gettext("yes") if default else gettext("no")
        elif isinstance(default, int | float):
            shown = number_format(default)
        else:
            shown = str(default)
        parts.append(gettext("Default: %(value)s.") % {"value": shown})
    if required:
        parts.append(gettext("Required for an active slot."))
    return " ".join(part for part in parts if part)


def _form_field(prop: Mapping[str, Any], required: bool) -> forms.Field:
    """One schema property as a form field; ``required=False``: the schema judges, for active slots only."""
    options: dict[str, Any] = {
        "label": schema_text(prop.get("title")),
        "help_text": _help_text(prop, required),
        "required": False,
    }
    kind = prop.get("type")
    if "enum" in prop:
        choices = [(str(value), str(value)) for value in prop["enum"]]
        if "default" not in prop:
            choices.insert(0, ("", gettext("— not set —")))
        return forms.ChoiceField(choices=choices, **options)
    if kind == "boolean":
        return forms.BooleanField(**options)
    number_attrs = {name: prop[key] for name, key in (("min", "minimum"), ("max", "maximum")) if key in prop}
    if "default" in prop:
        number_attrs["placeholder"] = prop["default"]
    if kind == "integer":
        return forms.IntegerField(widget=forms.NumberInput(attrs={**number_attrs, "step": 1}), **options)
    if kind == "number":
        return forms.FloatField(widget=forms.NumberInput(attrs={**number_attrs, "step": "any"}), **options)
    text_attrs: dict[str, Any] = {}
    if "maxLength" in prop:
        text_attrs["maxlength"] = prop["maxLength"]
    if prop.get("x-widget") == "textarea":
        return forms.CharField(widget=forms.Textarea(attrs={**text_attrs, "rows": 6}), strip=True, **options)
    suggestions = [str(value) for value in [prop.get("default"), *prop.get("examples", [])] if value]
    if suggestions:
        unique = list(dict.fromkeys(suggestions))
        return forms.CharField(widget=SuggestionsInput(unique, attrs=text_attrs), strip=True, **options)
    return forms.CharField(widget=forms.TextInput(attrs=text_attrs), strip=True, **options)


def _properties(schema: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(form field name, property, required) for every leaf property, nested objects flattened."""
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object" and "properties" in prop:
            yield from _properties(prop, f"{prefix}{name}{NESTED}")
        else:
            yield f"{prefix}{name}", prop, name in required and not prefix


def _initial(values: Mapping[str, Any], field_name: str, prop: Mapping[str, Any]) -> Any:
    current: Any = values
    for part in field_name.split(NESTED):
        current = current.get(part) if isinstance(current, Mapping) else None
    if current is None:
        return prop.get("default")
    return current


class ProviderSettingsForm(forms.Form):
    """The settings of one provider/operation; ``settings_value()`` is the JSON the slot stores."""

    use_required_attribute = False

    def __init__(
        self,
        *args: Any,
        provider: str,
        operation: str,
        current: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.operation = operation
        self.schema = schema_for(provider, operation) or {}
        current = current or {}
        # One field per property, in the schema's order.
        for name, prop, required in _properties(self.schema):
            self.fields[name] = _form_field(prop, required)
            self.fields[name].initial = _initial(current, name, prop)
            if NESTED in name:
                parent = name.split(NESTED)[0]
                title = schema_text(self.schema["properties"][parent].get("title")) or parent
                self.fields[name].label = f"{title}: {self.fields[name].label}"

    @property
    def title(self) -> str:
        return schema_text(self.schema.get("title"))

    @property
    def description(self) -> str:
        return schema_text(self.schema.get("description"))

    def settings_value(self) -> dict[str, Any]:
        """The cleaned inputs as the slot's settings: empty inputs left out (the provider's default)."""
        value: dict[str, Any] = {}
        for name, cleaned in self.cleaned_data.items():
            if cleaned is None or cleaned == "":
                continue
            target = value
            *parents, leaf = name.split(NESTED)
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = cleaned
        return value

    def add_problems(self, problems: Mapping[str, str]) -> None:
        """Put schema validation messages (by setting name) on their fields; others on the form."""
        for name, message in problems.items():
            field_name = name.replace(".", NESTED)
            if field_name in self.fields:
                self.add_error(field_name, message)
            elif name == "settings":
                self.add_error(None, message)
            else:
                self.add_error(None, f"{name}: {message}")
