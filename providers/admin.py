from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from providers import services
from providers.models import ProviderCredential


class ProviderCredentialForm(forms.ModelForm[ProviderCredential]):
    api_key = forms.CharField(
        label=_("API key"),
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Write-only: stored encrypted and never shown again. Enter a new key to replace it."),
    )

    class Meta:
        model = ProviderCredential
        fields = ["provider"]


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin[ProviderCredential]):
    form = ProviderCredentialForm
    list_display = ["provider", "key_status", "updated_by"]
    readonly_fields = ["key_status", "updated_by"]

    @admin.display(description=_("Key"))
    def key_status(self, obj: ProviderCredential) -> str:
        if not obj.pk:
            return str(_("Not configured"))
        updated_at = date_format(localtime(obj.updated_at), "Y-m-d H:i")
        return format_html("{} {}", _("Configured, updated at"), updated_at)

    def get_readonly_fields(self, request: HttpRequest, obj: ProviderCredential | None = None) -> Any:
        return [*self.readonly_fields, "provider"] if obj else self.readonly_fields

    def save_model(
        self,
        request: HttpRequest,
        obj: ProviderCredential,
        form: forms.ModelForm[ProviderCredential],
        change: bool,
    ) -> None:
        saved = services.provider_key_set(
            provider=obj.provider,
            api_key=form.cleaned_data["api_key"],
            user=request.user,  # type: ignore[arg-type]
        )
        obj.pk = saved.pk
