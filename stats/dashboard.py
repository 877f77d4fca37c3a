"""``/admin/stats/dashboard/``: the event at a glance for staff — cards, two charts, slots, failures.

An admin view (``admin.site.admin_view``: staff only), drawn from the same SQL report as the stats API
(``stats.selectors.stats_report``). Charts are Chart.js, shipped as a static file (no CDN).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from stats.selectors import dashboard_slots, recent_failures, stats_report


@dataclass(frozen=True)
class Period:
    key: str
    label: Any
    length: timedelta
    group_by: str


PERIODS = [
    Period("today", _("Today"), timedelta(0), "hour"),
    Period("24h", _("Last 24 hours"), timedelta(hours=24), "hour"),
    Period("7d", _("Last 7 days"), timedelta(days=7), "day"),
    Period("30d", _("Last 30 days"), timedelta(days=30), "day"),
]


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """The period's start and end; "today" starts at local midnight (the studio's TIME_ZONE)."""
    if period.key == "today":
        local = timezone.localtime(now)
        return local.replace(hour=0, minute=0, second=0, microsecond=0), now
    return now - period.length, now


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def dashboard_view(request: HttpRequest) -> TemplateResponse:
    period = next((p for p in PERIODS if p.key == request.GET.get("period")), PERIODS[0])
    start, end = period_bounds(period, timezone.now())
    report = stats_report(start=start, end=end, group_by=period.group_by)
    totals = report.totals
    errors = totals["provider_errors"] + totals["internal_errors"]
    cards = {
        "images": totals["succeeded"],
        "success_percent": _percent(totals["succeeded"], totals["ingests"]),
        "timeouts": totals["timeouts"],
        "errors": errors,
        "rejected": sum(totals["rejected"].values()),
        "p95_seconds": round(totals["p95_ms"] / 1000, 1) if totals["p95_ms"] is not None else None,
    }
    charts = {
        "labels": [
            timezone.localtime(bucket["start"]).strftime("%H:%M" if period.group_by == "hour" else "%d.%m")
            for bucket in report.buckets
        ],
        "succeeded": [bucket["succeeded"] for bucket in report.buckets],
        "timeouts": [bucket["timeouts"] for bucket in report.buckets],
        "errors": [bucket["provider_errors"] + bucket["internal_errors"] for bucket in report.buckets],
        "rejected": [sum(bucket["rejected"].values()) for bucket in report.buckets],
        "p50": [_seconds(bucket["p50_ms"]) for bucket in report.buckets],
        "p95": [_seconds(bucket["p95_ms"]) for bucket in report.buckets],
        "wait_p95": [_seconds(bucket["queue_wait_p95_ms"]) for bucket in report.buckets],
        "names": {
            "succeeded": gettext("images"),
            "timeouts": gettext("timeouts"),
            "errors": gettext("errors"),
            "rejected": gettext("refused requests"),
            "p50": gettext("median"),
            "p95": gettext("95th percentile"),
            "wait": gettext("queue wait, 95th percentile"),
        },
    }
    context = {
        **admin.site.each_context(request),
        "title": _("Statistics"),
        "periods": PERIODS,
        "period": period,
        "start": start,
        "end": end,
        "cards": cards,
        "charts": charts,
        "slots": dashboard_slots(start=start, end=end, per_slot=report.slots or []),
        "failures": recent_failures(start=start, end=end),
    }
    return TemplateResponse(request, "admin/stats/dashboard.html", context)


def _seconds(milliseconds: int | None) -> float | None:
    return round(milliseconds / 1000, 2) if milliseconds is not None else None
