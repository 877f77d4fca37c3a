"""Counts of objects in the admin's lists in grammatical Russian ("15 слотов", not "15 слоты").

Django's changelist footer prints the count next to the model's plural name, which Russian cannot do
with one plural: its three forms come from ``ngettext`` here, per model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import template
from django.utils.translation import ngettext

register = template.Library()

_COUNTS: dict[str, Callable[[int], str]] = {
    "slots.slot": lambda n: ngettext("%(count)s slot", "%(count)s slots", n),
    "slots.templatemedia": lambda n: ngettext("%(count)s template image", "%(count)s template images", n),
    "media.mediaobject": lambda n: ngettext("%(count)s temporary file", "%(count)s temporary files", n),
    "auth.user": lambda n: ngettext("%(count)s user", "%(count)s users", n),
    "auth.group": lambda n: ngettext("%(count)s group", "%(count)s groups", n),
    "axes.accessattempt": lambda n: ngettext("%(count)s failed login", "%(count)s failed logins", n),
}


@register.simple_tag
def object_count(count: int, opts: Any) -> str:
    """``count`` objects of the model ``opts`` describes, in words."""
    counted = _COUNTS.get(opts.label_lower)
    if counted is None:
        name = opts.verbose_name if count == 1 else opts.verbose_name_plural
        return f"{count} {name}"
    return counted(count) % {"count": count}
