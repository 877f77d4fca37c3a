from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from media.images import sniff_image_type
from providers.kinds import NETWORK_PROVIDER_KINDS, ProviderKind
from slots import services
from slots.models import Slot, SlotTemplateBinding, StudioSettings, TemplateMedia


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
        errors = services.slot_configuration_errors(slot=self.instance, template_roles=self.template_roles)
        if services.TEMPLATE_BINDINGS in errors:
            raise ValidationError(errors[services.TEMPLATE_BINDINGS])


class SlotTemplateBindingInline(admin.TabularInline[SlotTemplateBinding, Slot]):
    model = SlotTemplateBinding
    formset = SlotTemplateBindingFormSet
    extra = 0
    autocomplete_fields = ["template"]

    # The bindings are part of the slot's configuration: whoever may change a slot may bind its
    # templates, so the slot is always validated and saved with its bindings.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("slots.view_slot") or self.has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("slots.change_slot")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)


class SlotForm(forms.ModelForm[Slot]):
    # The version the editor saw; a save against a newer version is refused (optimistic locking).
    seen_version = forms.IntegerField(widget=forms.HiddenInput)

    class Meta:
        model = Slot
        fields = ["display_name", "provider", "operation", "settings", "size_limit_mb", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk:
            self.fields["seen_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        seen = cleaned.get("seen_version")
        if seen is not None and self.instance.pk:
            # Locked until the admin's transaction ends: no other save comes between here and ours.
            if services.slot_version_lock(slot_id=self.instance.pk) != seen:
                raise ValidationError(
                    _("This slot was changed by someone else in the meantime. Reload it and try again.")
                )
        configuration = ["provider", "operation", "settings", "is_active"]
        if all(name in cleaned for name in configuration):
            candidate = Slot(id=self.instance.pk, **{name: cleaned[name] for name in configuration})
            # The bound templates are judged by SlotTemplateBindingFormSet, which has the submitted ones.
            errors = services.slot_configuration_errors(slot=candidate, template_roles=[])
            for name, messages in errors.items():
                if name != services.TEMPLATE_BINDINGS:
                    self.add_error(name, messages)
        return cleaned


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin[Slot]):
    form = SlotForm
    list_display = ["id", "display_name", "provider", "operation", "is_active", "size_limit_mb", "updated_at"]
    list_filter = ["provider", "is_active"]
    search_fields = ["id", "display_name"]
    readonly_fields = ["id", "ingest_url_display", "version", "updated_at", "updated_by"]
    inlines = [SlotTemplateBindingInline]
    fieldsets = [
        (None, {"fields": ["id", "ingest_url_display", "display_name", "is_active"]}),
        (_("Provider"), {"fields": ["provider", "operation", "settings"]}),
        (_("Limits"), {"fields": ["size_limit_mb"]}),
        (_("Audit"), {"fields": ["version", "updated_at", "updated_by", "seen_version"]}),
    ]

    @admin.display(description=_("Ingest URL"))
    def ingest_url_display(self, obj: Slot) -> str:
        return format_html("<code>{}</code>", obj.ingest_url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Slot | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Slot, form: forms.ModelForm[Slot], change: bool) -> None:
        """Nothing yet: ``save_related`` saves the slot once the template roles saved with it are known."""

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm[Slot], formsets: Any, change: bool
    ) -> None:
        # Validated in full by SlotForm and SlotTemplateBindingFormSet (under the slot's row lock), so
        # slot_update accepts what they accepted; the bindings follow in the same transaction.
        bindings = [formset for formset in formsets if isinstance(formset, SlotTemplateBindingFormSet)]
        slot = form.instance
        slot.version = form.cleaned_data["seen_version"]
        services.slot_update(
            slot=slot,
            fields={name: form.cleaned_data[name] for name in SlotForm.Meta.fields},
            template_roles=bindings[0].template_roles if bindings else None,
            user=request.user,  # type: ignore[arg-type]
        )
        super().save_related(request, form, formsets, change)


class TemplateMediaForm(forms.ModelForm[TemplateMedia]):
    class Meta:
        model = TemplateMedia
        fields = ["name", "file"]

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        upload.seek(0)
        head = upload.read(16)
        upload.seek(0)
        if sniff_image_type(head) is None:
            raise ValidationError(_("The file is not a JPEG, PNG, WebP or HEIC image."))
        return upload


@admin.register(TemplateMedia)
class TemplateMediaAdmin(admin.ModelAdmin[TemplateMedia]):
    form = TemplateMediaForm
    list_display = ["name", "mime_type", "size_bytes", "uploaded_at", "uploaded_by"]
    search_fields = ["name"]
    readonly_fields = ["mime_type", "size_bytes", "sha256", "uploaded_at", "uploaded_by"]

    def save_model(
        self, request: HttpRequest, obj: TemplateMedia, form: forms.ModelForm[TemplateMedia], change: bool
    ) -> None:
        services.template_media_save(template=obj, user=request.user)  # type: ignore[arg-type]


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


# One form field per capped provider, declared on StudioSettingsForm under these names.
PROVIDER_CAP_FIELDS = {kind: f"provider_cap_{kind}" for kind in NETWORK_PROVIDER_KINDS}


class StudioSettingsForm(forms.ModelForm[StudioSettings]):
    provider_cap_gemini = provider_cap_field(ProviderKind.GEMINI)
    provider_cap_openai = provider_cap_field(ProviderKind.OPENAI)
    provider_cap_turbotext = provider_cap_field(ProviderKind.TURBOTEXT)
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
        fields = ["sync_response_seconds", "result_retention_hours", "public_link_ttl_seconds"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        caps = self.instance.provider_concurrency or {}
        for kind, name in PROVIDER_CAP_FIELDS.items():
            self.fields[name].initial = caps.get(kind)

    def provider_caps(self) -> dict[str, int]:
        return {kind: self.cleaned_data[name] for kind, name in PROVIDER_CAP_FIELDS.items()}

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


@admin.register(StudioSettings)
class StudioSettingsAdmin(admin.ModelAdmin[StudioSettings]):
    form = StudioSettingsForm
    readonly_fields = ["ingest_password_status", "updated_at", "updated_by"]
    fieldsets = [
        (
            _("Timing"),
            {"fields": ["sync_response_seconds", "result_retention_hours", "public_link_ttl_seconds"]},
        ),
        (_("Provider caps"), {"fields": list(PROVIDER_CAP_FIELDS.values())}),
        (_("Ingest password"), {"fields": ["ingest_password_status", "new_ingest_password"]}),
        (_("Audit"), {"fields": ["updated_at", "updated_by"]}),
    ]

    @admin.display(description=_("Ingest password"))
    def ingest_password_status(self, obj: StudioSettings) -> str:
        if not obj.ingest_password_configured:
            return str(_("Not configured: ingest is closed."))
        who = obj.ingest_password_rotated_by or _("bootstrap")
        when = obj.ingest_password_rotated_at
        rotated_at = date_format(localtime(when), "Y-m-d H:i") if when else "—"
        return format_html("{} {} · {}", _("Configured, rotated"), rotated_at, who)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        studio = services.studio_settings_get()
        return HttpResponseRedirect(reverse("admin:slots_studiosettings_change", args=[studio.pk]))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: StudioSettings | None = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: StudioSettings, form: StudioSettingsForm, change: bool
    ) -> None:
        services.studio_settings_update(
            change=services.StudioSettingsChange(
                sync_response_seconds=form.cleaned_data["sync_response_seconds"],
                result_retention_hours=form.cleaned_data["result_retention_hours"],
                public_link_ttl_seconds=form.cleaned_data["public_link_ttl_seconds"],
                provider_concurrency=form.provider_caps(),
            ),
            user=request.user,  # type: ignore[arg-type]
        )
        password = form.cleaned_data.get("new_ingest_password")
        if password:
            services.ingest_password_set(password=password, user=request.user)  # type: ignore[arg-type]
