"""Template filters for job pages: durations and moments as staff read them (see photochanger.admin_lists)."""

from __future__ import annotations

from datetime import datetime

from django import template

from photochanger.admin_lists import datetime_to_second, seconds_text

register = template.Library()


@register.filter
def seconds(value: float | None) -> str:
    """``{{ 3.24|seconds }}`` → "3,2 с"; hundredths below a second ("0,04 с")."""
    return seconds_text(value)


@register.filter
def to_second(value: datetime | None) -> str:
    """``{{ job.created_at|to_second }}`` → "29.11.2026 07:52:57" (the short date format, then the time)."""
    return datetime_to_second(value)
