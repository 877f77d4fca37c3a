from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from media.models import MediaObject


@admin.register(MediaObject)
class MediaObjectAdmin(admin.ModelAdmin[MediaObject]):
    list_display = [
        "short_id",
        "kind",
        "job",
        "mime_type",
        "size_bytes",
        "created_at",
        "expires_at",
        "deleted_at",
    ]
    list_filter = ["kind"]
    list_select_related = ["job"]

    @admin.display(description="id")
    def short_id(self, obj: MediaObject) -> str:
        # The id is the secret of a public link; staff only need to tell rows apart.
        return f"{obj.id[:8]}…"

    def get_readonly_fields(self, request: HttpRequest, obj: MediaObject | None = None) -> list[str]:
        return [field.name for field in MediaObject._meta.concrete_fields if field.name != "id"]

    def get_fields(self, request: HttpRequest, obj: MediaObject | None = None) -> Any:
        return self.get_readonly_fields(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: MediaObject | None = None) -> bool:
        return False
