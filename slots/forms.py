"""The staff forms of the slot page and Studio settings; the admin (``slots/admin.py``) stays thin."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, cast

from django import forms
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.forms.models import BaseInlineFormSet
from django.utils.formats import date_format
from django.utils.text import capfirst, format_lazy
from django.utils.timezone import localtime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media.images import sniff_image_type
from providers.kinds import NETWORK_PROVIDER_KINDS, ProviderKind
from providers.registry import get_provider
from providers.schemas import operations_for, schema_for, schema_keys
from providers.services import provider_key_status
from slots import services
from slots.models import ShareQrCorner, Slot, SlotTemplateBinding, StudioSettings, TemplateMedia
from slots.settings_form import ProviderSettingsForm, schema_text

# What the slot form saves through slots.services.slot_update.
SLOT_FIELDS = [
    "display_name",
    "provider",
    "operation",
    "settings",
    "size_limit_mb",
    "is_active",
    "share_qr",
    "fallback_slot",
]


def check_template_upload(upload: UploadedFile) -> None:
    """A template must be an image we accept, judged by its bytes."""
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if sniff_image_type(head) is None:
        raise ValidationError(_("The file is not a JPEG, PNG, WebP or HEIC image."))


def operation_choices(provider: str) -> list[tuple[str, str]]:
    """The operations of ``provider`` for a select: (operation, its schema's title in the active language)."""
    choices = []
    for operation in operations_for(provider):
        title = schema_text((schema_for(provider, operation) or {}).get("title"))
        choices.append((operation, title or operation))
    return choices


def default_operation(provider: str) -> str:
    try:
        return get_provider(provider).default_operation
    except LookupError:
        return ""


class SlotTemplateBindingForm(forms.ModelForm[SlotTemplateBinding]):
    """One bound template: an existing template image, or a new file uploaded right here."""

    new_file = forms.FileField(
        label=_("or upload a new image"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp,image/heic"}),
        help_text=_("PNG with transparency for a frame."),
    )

    class Meta:
        model = SlotTemplateBinding
        fields = ["template", "new_file", "role", "position"]

    def __init__(self, *args: Any, uploaded_by: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uploaded_by = uploaded_by
        self.fields["template"].required = False
        self.fields["template"].label = capfirst(_("template"))

    def clean_new_file(self) -> Any:
        upload = self.cleaned_data.get("new_file")
        if upload:
            check_template_upload(upload)
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("DELETE"):
            return cleaned
        template, upload = cleaned.get("template"), cleaned.get("new_file")
        if template and upload:
            self.add_error("new_file", _("Choose a template or upload a new one, not both."))
        elif not template and not upload and "new_file" not in self.errors:
            self.add_error("template", _("Choose a template or upload a new one."))
        return cleaned

    def save(self, commit: bool = True) -> SlotTemplateBinding:
        upload = self.cleaned_data.get("new_file")
        if upload:
            template = TemplateMedia(name=PurePath(upload.name or "template").stem[:120])
            template.file = upload
            self.instance.template = services.template_media_save(template=template, user=self.uploaded_by)
        return super().save(commit=commit)


class SlotTemplateBindingFormSet(BaseInlineFormSet[SlotTemplateBinding, Slot, Any]):
    """The template bindings submitted with a slot; it judges the slot's templates with them.

    The admin validates this formset after the slot form, with ``instance`` = the slot carrying the
    submitted values, so a frame bound and the slot activated in one save are judged together. The slot
    form judges the slot's own fields; this formset only the problems with its templates.
    """

    template_roles: list[str]

    def clean(self) -> None:
        super().clean()
        self.template_roles = [
            form.cleaned_data["role"]
            for form in self.forms
            if form.cleaned_data.get("role") and not form.cleaned_data.get("DELETE")
        ]
        if any(self.errors):
            return  # the rows' own errors first
        problems = services.slot_configuration_problems(
            slot=self.instance, template_roles=self.template_roles
        )
        if problems.templates:
            raise ValidationError(problems.templates)


class SlotForm(forms.ModelForm[Slot]):
    """The slot's fields, with its provider settings as a form generated from the operation's schema.

    One ``ProviderSettingsForm`` per provider/operation is built (the page shows the chosen one and
    switches without a reload); the one submitted is the chosen provider and operation's.
    """

    # The version the editor saw; a save against a newer version is refused (optimistic locking).
    seen_version = forms.IntegerField(widget=forms.HiddenInput)
    operation = forms.ChoiceField(label=capfirst(_("operation")))

    class Meta:
        model = Slot
        fields = [
            "display_name",
            "provider",
            "operation",
            "size_limit_mb",
            "is_active",
            "share_qr",
            "fallback_slot",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk:
            self.fields["seen_version"].initial = instance.version
        # Any other slot, active or not; a fallback's own fallback is never followed.
        fallback_field = cast(forms.ModelChoiceField, self.fields["fallback_slot"])
        fallback_field.queryset = Slot.objects.exclude(id=instance.pk)
        self.fields["share_qr"].required = False  # not sent: off

        saved = (instance.provider, instance.operation or default_operation(instance.provider))
        if self.is_bound:
            chosen = (str(self.data.get("provider", "")), str(self.data.get("operation", "")))
        else:
            chosen = saved
        operation_field = cast(forms.ChoiceField, self.fields["operation"])
        operation_field.choices = operation_choices(chosen[0])
        operation_field.initial = saved[1]
        operation_field.help_text = _("The choices depend on the provider.")
        self.chosen_settings_key = f"{chosen[0]}.{chosen[1]}"
        self.settings_forms: dict[str, ProviderSettingsForm] = {}
        for provider, operation in schema_keys():
            key = f"{provider}.{operation}"
            self.settings_forms[key] = ProviderSettingsForm(
                self.data if self.is_bound and key == self.chosen_settings_key else None,
                prefix=f"settings-{provider}-{operation}",
                provider=provider,
                operation=operation,
                current=instance.settings if (provider, operation) == saved else None,
            )

    def clean_share_qr(self) -> str:
        return str(self.cleaned_data.get("share_qr") or ShareQrCorner.OFF)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        seen = cleaned.get("seen_version")
        if seen is not None and self.instance.pk:
            # Locked until the admin's transaction ends: no other save comes between here and ours.
            if services.slot_version_lock(slot_id=self.instance.pk) != seen:
                raise ValidationError(
                    _("This slot was changed by someone else in the meantime. Reload it and try again.")
                )
        settings_form = self.settings_forms.get(f"{cleaned.get('provider')}.{cleaned.get('operation')}")
        if settings_form is None:
            return cleaned  # the provider or operation field has its error
        if not settings_form.is_valid():
            self.add_error(None, _("Correct the provider settings below."))
            return cleaned
        fallback = cleaned.get("fallback_slot")
        if fallback is not None and fallback.pk != self.instance.pk:
            for messages in services.fallback_slot_errors(fallback=fallback).values():
                self.add_error("fallback_slot", messages)
        cleaned["settings"] = settings_form.settings_value()
        if prompt_problems := services.slot_settings_problems(settings_value=cleaned["settings"]):
            settings_form.add_problems(prompt_problems)
            self.add_error(None, _("Correct the provider settings below."))
            return cleaned
        if "is_active" in cleaned:
            candidate = Slot(
                id=self.instance.pk,
                **{name: cleaned[name] for name in ["provider", "operation", "settings", "is_active"]},
            )
            # The bound templates are judged by SlotTemplateBindingFormSet, which has the submitted ones.
            problems = services.slot_configuration_problems(slot=candidate, template_roles=[])
            for name, messages in problems.fields.items():
                self.add_error(name if name in self.fields else None, messages)
            if problems.settings:
                settings_form.add_problems(problems.settings)
                self.add_error(None, _("Correct the provider settings below."))
        return cleaned


class TemplateMediaForm(forms.ModelForm[TemplateMedia]):
    class Meta:
        model = TemplateMedia
        fields = ["name", "file"]

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        check_template_upload(upload)
        return upload


def provider_cap_field(kind: ProviderKind) -> forms.IntegerField:
    return forms.IntegerField(
        label=format_lazy(_("Calls at once: {provider}"), provider=kind.label),
        min_value=services.PROVIDER_CAP_MIN,
        max_value=services.PROVIDER_CAP_MAX,
        help_text=format_lazy(
            _(
                "The maximum number of calls to this provider in flight at once across all workers "
                "({low}–{high}). Jobs beyond it wait for a free place within their deadline."
            ),
            low=services.PROVIDER_CAP_MIN,
            high=services.PROVIDER_CAP_MAX,
        ),
    )


def provider_key_field(kind: ProviderKind) -> forms.CharField:
    return forms.CharField(
        label=format_lazy(_("API key: {provider}"), provider=kind.label),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


def provider_key_clear_field(kind: ProviderKind) -> forms.BooleanField:
    return forms.BooleanField(label=_("clear the stored key"), required=False)


# One form field per capped provider, declared on StudioSettingsForm under these names.
PROVIDER_CAP_FIELDS = {kind: f"provider_cap_{kind}" for kind in NETWORK_PROVIDER_KINDS}
# Write-only API key fields and their "clear" boxes, one pair per provider that needs a key.
PROVIDER_KEY_FIELDS = {kind: (f"api_key_{kind}", f"clear_api_key_{kind}") for kind in NETWORK_PROVIDER_KINDS}


def provider_key_status_text(kind: ProviderKind) -> str:
    """'Configured, updated at …' (or where the key comes from) for the key field's help text."""
    status = provider_key_status(provider=kind)
    if status.stored and status.updated_at is not None:
        updated_at = date_format(localtime(status.updated_at), "Y-m-d H:i:s")
        who = f" · {status.updated_by}" if status.updated_by else ""
        text = gettext("Configured, updated at %(when)s%(who)s.") % {"when": updated_at, "who": who}
    elif status.in_environment:
        text = gettext("Not stored here: the key from the environment is used.")
    else:
        text = gettext("Not configured: slots of this provider cannot be activated.")
    write_only = gettext("Write-only: enter a new key to replace it; it is stored encrypted and never shown.")
    return f"{text} {write_only}"


class StudioSettingsForm(forms.ModelForm[StudioSettings]):
    provider_cap_gemini = provider_cap_field(ProviderKind.GEMINI)
    provider_cap_openai = provider_cap_field(ProviderKind.OPENAI)
    provider_cap_turbotext = provider_cap_field(ProviderKind.TURBOTEXT)
    api_key_gemini = provider_key_field(ProviderKind.GEMINI)
    clear_api_key_gemini = provider_key_clear_field(ProviderKind.GEMINI)
    api_key_openai = provider_key_field(ProviderKind.OPENAI)
    clear_api_key_openai = provider_key_clear_field(ProviderKind.OPENAI)
    api_key_turbotext = provider_key_field(ProviderKind.TURBOTEXT)
    clear_api_key_turbotext = provider_key_clear_field(ProviderKind.TURBOTEXT)
    new_ingest_password = forms.CharField(
        label=_("New ingest password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Write-only. Leave empty to keep the current password. Booths must be updated after a change."
        ),
    )

    class Meta:
        model = StudioSettings
        fields = [
            "sync_response_seconds",
            "result_retention_hours",
            "public_link_ttl_seconds",
            "history_retention_days",
            "keep_late_results",
            "late_result_grace_seconds",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        caps = self.instance.provider_concurrency or {}
        for kind, name in PROVIDER_CAP_FIELDS.items():
            self.fields[name].initial = caps.get(kind)
        for kind, (key_name, _clear_name) in PROVIDER_KEY_FIELDS.items():
            self.fields[key_name].help_text = provider_key_status_text(kind)

    def provider_caps(self) -> dict[str, int]:
        return {kind: self.cleaned_data[name] for kind, name in PROVIDER_CAP_FIELDS.items()}

    def provider_key_changes(self) -> dict[str, str]:
        """The keys to set (a new key) or remove (''), by provider; providers left alone are absent."""
        changes = {}
        for kind, (key_name, clear_name) in PROVIDER_KEY_FIELDS.items():
            if self.cleaned_data.get(clear_name):
                changes[str(kind)] = ""
            elif self.cleaned_data.get(key_name):
                changes[str(kind)] = self.cleaned_data[key_name]
        return changes

    def clean_sync_response_seconds(self) -> int:
        value = int(self.cleaned_data["sync_response_seconds"])
        services.validate_sync_response_seconds(value)
        return value

    def clean_new_ingest_password(self) -> str:
        password = str(self.cleaned_data.get("new_ingest_password") or "")
        if password and len(password) < services.MIN_INGEST_PASSWORD_LENGTH:
            raise ValidationError(
                _("The ingest password must be at least %(n)s characters long."),
                params={"n": services.MIN_INGEST_PASSWORD_LENGTH},
            )
        return password

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for key_name, clear_name in PROVIDER_KEY_FIELDS.values():
            if cleaned.get(key_name) and cleaned.get(clear_name):
                self.add_error(clear_name, _("Enter a new key or clear the stored one, not both."))
        return cleaned
