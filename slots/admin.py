"""Staff pages of the studio: the 15 slots (with their booth setup), template images, Studio settings.

Forms live in ``slots/forms.py``; writes go through ``slots.services`` and ``providers.services``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from jobs.admin_views import result_gallery
from jobs.slot_stats import slots_with_activity
from media import storage
from providers.kinds import ProviderKind
from providers.schemas import schema_for
from providers.services import provider_key_set
from slots import services
from slots.forms import (
    PROVIDER_CAP_FIELDS,
    PROVIDER_KEY_FIELDS,
    SLOT_FIELDS,
    SlotForm,
    SlotTemplateBindingForm,
    SlotTemplateBindingFormSet,
    StudioSettingsForm,
    TemplateMediaForm,
    default_operation,
    operation_choices,
)
from slots.models import Slot, SlotTemplateBinding, StudioSettings, TemplateMedia
from slots.settings_form import schema_text

# The booth's own timeout should outlast the studio's sync window by this much (upload and network).
BOOTH_TIMEOUT_MARGIN_SECONDS = 5


def copy_button(url: str) -> SafeString:
    """A URL with a button copying it (``slots/static/slots/copy.js``); it may wrap before its path."""
    head, slash, tail = url.partition("/ingest/")
    return format_html(
        '<span class="copy-field"><code>{}<wbr>{}{}</code> <button type="button" class="button copy-button" '
        'data-copy="{}" data-copied-label="{}">{}</button></span>',
        head,
        slash,
        tail,
        url,
        _("Copied"),
        _("Copy"),
    )


def cell_label(text: Any) -> SafeString:
    """A column's name inside its cell, shown only where the list is laid out as cards (phones)."""
    return format_html('<span class="cell-label">{}: </span>', text)


def template_preview(template: TemplateMedia | None) -> SafeString | str:
    if template is None or template.pk is None:
        return "—"
    url = reverse("admin:slots_templatemedia_preview", args=[template.pk])
    return format_html(
        '<a href="{}" target="_blank"><img src="{}" alt="{}" class="template-preview"></a>',
        url,
        url,
        template.name,
    )


class SlotTemplateBindingInline(admin.StackedInline[SlotTemplateBinding, Slot]):
    model = SlotTemplateBinding
    # "Add another template" (the model's own name would read "Добавить еще один Привязка шаблона").
    verbose_name = _("template")
    verbose_name_plural = _("template bindings")
    form = SlotTemplateBindingForm
    formset = SlotTemplateBindingFormSet
    extra = 0
    autocomplete_fields = ["template"]
    fields = ["preview", "template", "new_file", "role", "position"]
    readonly_fields = ["preview"]

    @admin.display(description=_("Preview"))
    def preview(self, obj: SlotTemplateBinding) -> SafeString | str:
        return template_preview(obj.template if obj.template_id else None)

    # The bindings are part of the slot's configuration: whoever may change a slot may bind its
    # templates (and upload new ones here), so the slot is always validated and saved with its bindings.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("slots.view_slot") or self.has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("slots.change_slot")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)


def slot_model_name(slot: Slot) -> str:
    """The model a slot calls (its setting, else the schema's default), or its operation's title."""
    schema = schema_for(slot.provider, slot.operation or default_operation(slot.provider)) or {}
    model_property = schema.get("properties", {}).get("model")
    if model_property is not None:
        return str((slot.settings or {}).get("model") or model_property.get("default") or "")
    return schema_text(schema.get("title")) or slot.operation


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin[Slot]):
    form = SlotForm
    change_form_template = "admin/slots/slot/change_form.html"
    # Fifteen rows: no filters or search, so the columns have the width (and read as cards on a phone).
    list_display = [
        "slot_name",
        "ingest_url_copy",
        "provider_and_model",
        "active_state",
        "last_photo",
        "today",
    ]
    list_display_links = ["slot_name"]
    readonly_fields = ["id", "version", "updated_at", "updated_by"]
    inlines = [SlotTemplateBindingInline]
    fieldsets = [
        (None, {"fields": ["id", "display_name", "is_active"]}),
        (_("Provider"), {"fields": ["provider", "operation"]}),
        (_("Limits"), {"fields": ["size_limit_mb"]}),
        (_("Guests and failover"), {"fields": ["share_qr", "fallback_slot"]}),
        (_("Audit"), {"fields": ["version", "updated_at", "updated_by", "seen_version"]}),
    ]
    # The generated provider settings are shown after this fieldset (by its index above).
    settings_after_fieldset = 1

    class Media:
        css = {"all": ["slots/slot_admin.css"]}
        js = ["slots/copy.js", "slots/slot_form.js"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Slot]:
        return slots_with_activity(super().get_queryset(request))

    @admin.display(description=_("slot"), ordering="id")
    def slot_name(self, obj: Slot) -> SafeString:
        name = obj.display_name if obj.display_name and obj.display_name != obj.id else ""
        return format_html('<strong class="slot-id">{}</strong><br>{}', obj.id, name)

    @admin.display(description=_("Ingest URL"))
    def ingest_url_copy(self, obj: Slot) -> SafeString:
        return copy_button(obj.ingest_url)

    @admin.display(description=_("Provider and model"), ordering="provider")
    def provider_and_model(self, obj: Slot) -> SafeString:
        return format_html(
            '{}<br><span class="quiet">{}</span>', obj.get_provider_display(), slot_model_name(obj) or "—"
        )

    @admin.display(description=_("active"), ordering="is_active")
    def active_state(self, obj: Slot) -> SafeString:
        if obj.is_active:
            return format_html('<span class="slot-state slot-on">{}</span>', _("On"))
        return format_html('<span class="slot-state slot-off">{}</span>', _("Off"))

    @admin.display(description=_("Last photo"), ordering="last_photo_at")
    def last_photo(self, obj: Slot) -> SafeString:
        when = getattr(obj, "last_photo_at", None)
        shown = date_format(localtime(when), "Y-m-d H:i:s") if when else "—"
        return format_html("{}{}", cell_label(_("Last photo")), shown)

    @admin.display(description=_("Today: images / timeouts / errors"))
    def today(self, obj: Slot) -> SafeString:
        return format_html(
            '{}<span class="today-counts"><span class="today-images" title="{}">{}</span> / '
            '<span class="today-timeouts" title="{}">{}</span> / <span class="today-errors" title="{}">{}</span></span>',
            cell_label(_("Today: images / timeouts / errors")),
            _("images"),
            getattr(obj, "images_today", 0),
            _("timeouts"),
            getattr(obj, "timeouts_today", 0),
            _("errors"),
            getattr(obj, "errors_today", 0),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Slot | None = None) -> bool:
        return False

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, SlotTemplateBindingInline):
            kwargs["form_kwargs"] = {"uploaded_by": request.user}
        return kwargs

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Slot | None = None,
    ) -> HttpResponse:
        form = context["adminform"].form
        context["settings_groups"] = [
            {
                "key": key,
                "chosen": key == form.chosen_settings_key,
                "form": settings_form,
                "adminform": helpers.AdminForm(
                    settings_form,
                    [
                        (
                            _("Provider settings: %(operation)s")
                            % {"operation": settings_form.title or settings_form.operation},
                            {"fields": list(settings_form.fields), "description": settings_form.description},
                        )
                    ],
                    {},
                    model_admin=self,
                ),
            }
            for key, settings_form in form.settings_forms.items()
        ]
        context["settings_after_fieldset"] = self.settings_after_fieldset
        context["slot_operations"] = {
            str(kind): {"default": default_operation(kind), "choices": operation_choices(kind)}
            for kind in ProviderKind.values
        }
        if obj is not None:
            studio = services.studio_settings_get()
            context["booth"] = {
                "ingest_url": copy_button(obj.ingest_url),
                "sync_seconds": studio.sync_response_seconds,
                "timeout_seconds": studio.sync_response_seconds + BOOTH_TIMEOUT_MARGIN_SECONDS,
                "password_configured": studio.ingest_password_configured,
                "settings_url": reverse("admin:slots_studiosettings_change", args=[studio.pk]),
                "test_run_url": reverse("slot-test-run", args=[obj.pk]),
                "stats_url": reverse("stats-dashboard"),
                "slot_stats_url": reverse("stats-slot", args=[obj.pk]),
            }
            context["gallery"] = result_gallery(request, slot_id=obj.pk)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: Slot, form: ModelForm[Slot], change: bool) -> None:
        """Nothing yet: ``save_related`` saves the slot once the template roles saved with it are known."""

    def save_related(self, request: HttpRequest, form: ModelForm[Slot], formsets: Any, change: bool) -> None:
        # Validated in full by SlotForm and SlotTemplateBindingFormSet (under the slot's row lock), so
        # slot_update accepts what they accepted; the bindings follow in the same transaction.
        bindings = [formset for formset in formsets if isinstance(formset, SlotTemplateBindingFormSet)]
        slot = form.instance
        slot.version = form.cleaned_data["seen_version"]
        services.slot_update(
            slot=slot,
            fields={name: form.cleaned_data[name] for name in SLOT_FIELDS},
            template_roles=bindings[0].template_roles if bindings else None,
            user=request.user,  # type: ignore[arg-type]
        )
        super().save_related(request, form, formsets, change)


@admin.register(TemplateMedia)
class TemplateMediaAdmin(admin.ModelAdmin[TemplateMedia]):
    form = TemplateMediaForm
    list_display = ["preview", "name", "mime_type", "size_bytes", "uploaded_at", "uploaded_by"]
    list_display_links = ["preview", "name"]
    search_fields = ["name"]
    readonly_fields = ["preview", "mime_type", "size_bytes", "sha256", "uploaded_at", "uploaded_by"]

    class Media:
        css = {"all": ["slots/slot_admin.css"]}

    @admin.display(description=_("Preview"))
    def preview(self, obj: TemplateMedia) -> SafeString | str:
        return template_preview(obj)

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<uuid:template_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="slots_templatemedia_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest, template_id: Any) -> HttpResponseBase:
        """A small PNG of the template for staff pages (slot page bindings, this list); never public."""
        user = request.user
        allowed = ("slots.view_templatemedia", "slots.view_slot", "slots.change_slot")
        if not any(user.has_perm(permission) for permission in allowed):
            raise PermissionDenied
        template = TemplateMedia.objects.filter(pk=template_id).first()
        thumbnail = services.template_thumbnail_path(template=template) if template else None
        if thumbnail is None:
            raise Http404
        try:
            # A preview is a few KB: read whole (a FileResponse would be read whole under ASGI anyway).
            data = storage.read(thumbnail)
        except OSError:  # gone, or the media store is down: no preview, never a server error
            raise Http404 from None
        return HttpResponse(
            data, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
        )

    def save_model(
        self, request: HttpRequest, obj: TemplateMedia, form: ModelForm[TemplateMedia], change: bool
    ) -> None:
        services.template_media_save(template=obj, user=request.user)  # type: ignore[arg-type]


@admin.register(StudioSettings)
class StudioSettingsAdmin(admin.ModelAdmin[StudioSettings]):
    form = StudioSettingsForm
    readonly_fields = ["ingest_password_status", "updated_at", "updated_by"]
    fieldsets = [
        (
            _("Timing"),
            {
                "fields": [
                    "sync_response_seconds",
                    "result_retention_hours",
                    "public_link_ttl_seconds",
                    "history_retention_days",
                ]
            },
        ),
        (_("Late results"), {"fields": ["keep_late_results", "late_result_grace_seconds"]}),
        (_("Ingest password"), {"fields": ["ingest_password_status", "new_ingest_password"]}),
        (_("Provider API keys"), {"fields": list(PROVIDER_KEY_FIELDS.values())}),
        (_("Provider caps"), {"fields": list(PROVIDER_CAP_FIELDS.values())}),
        (_("Audit"), {"fields": ["updated_at", "updated_by"]}),
    ]

    class Media:
        css = {"all": ["slots/slot_admin.css"]}

    @admin.display(description=_("Ingest password"))
    def ingest_password_status(self, obj: StudioSettings) -> str:
        if not obj.ingest_password_configured:
            return str(_("Not configured: ingest is closed."))
        who = obj.ingest_password_rotated_by or _("bootstrap")
        when = obj.ingest_password_rotated_at
        rotated_at = date_format(localtime(when), "Y-m-d H:i:s") if when else "—"
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
                history_retention_days=form.cleaned_data["history_retention_days"],
                provider_concurrency=form.provider_caps(),
                keep_late_results=form.cleaned_data["keep_late_results"],
                late_result_grace_seconds=form.cleaned_data["late_result_grace_seconds"],
            ),
            user=request.user,  # type: ignore[arg-type]
        )
        password = form.cleaned_data.get("new_ingest_password")
        if password:
            services.ingest_password_set(password=password, user=request.user)  # type: ignore[arg-type]
        for provider, api_key in form.provider_key_changes().items():
            provider_key_set(provider=provider, api_key=api_key, user=request.user)  # type: ignore[arg-type]
