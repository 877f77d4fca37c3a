"""Login protection in the admin: the client addresses with failed logins, and unlocking them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_stubs_ext import StrOrPromise

from photochanger.login_protection import login_locked_until, login_lockouts_release


@admin.register(AccessAttempt)
class AccessAttemptAdmin(admin.ModelAdmin[Any]):
    list_display = ("ip_address", "username", "failures_since_start", "locked_until", "attempt_time")
    list_filter = ("attempt_time",)
    search_fields = ("ip_address", "username")
    fields = (
        "ip_address",
        "username",
        "failures_since_start",
        "locked_until",
        "attempt_time",
        "path_info",
        "user_agent",
    )
    readonly_fields = fields
    ordering = ("-attempt_time",)
    actions = ["unlock"]

    @admin.display(description=_("locked until"))
    def locked_until(self, attempt: AccessAttempt) -> datetime | StrOrPromise:
        until = login_locked_until(attempt=attempt)
        return until if until is not None else _("not locked")

    @admin.action(description=_("Unlock the selected addresses"), permissions=["unlock"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        released = login_lockouts_release(ip_addresses=queryset.values_list("ip_address", flat=True))
        self.message_user(
            request,
            ngettext(
                "Unlocked %(count)s address: it can log in again.",
                "Unlocked %(count)s addresses: they can log in again.",
                released,
            )
            % {"count": released},
            messages.SUCCESS,
        )

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("axes.delete_accessattempt")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
