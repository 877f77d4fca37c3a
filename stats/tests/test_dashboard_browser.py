"""The statistics dashboard in a real browser, in Russian: its two charts are drawn (Chart.js from our
static files, no network), its cards and tables are there, on a laptop and on a phone."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from stats.models import LogEvent, ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)


def an_hour_of_booth_work() -> None:
    now = timezone.now()
    for minute in range(0, 60, 4):
        created = now - timedelta(minutes=minute)
        state = "timeout" if minute % 20 == 0 else "succeeded"
        Job.objects.create(
            id=uuid.uuid4(), slot_id=f"slot-00{1 + minute % 3}", provider="gemini", state=state,
            created_at=created, expires_at=created + timedelta(seconds=48),
            claimed_at=created + timedelta(seconds=1), finalized_at=created + timedelta(seconds=6 + minute % 7),
            failure_reason="provider_timeout" if state == "timeout" else "",
            failure_message="Нет ответа за 48 с." if state == "timeout" else "",
        )  # fmt: skip
    ProcessingLogEntry.objects.create(
        created_at=now - timedelta(minutes=3), event=LogEvent.INGEST_REJECTED, slot_id="slot-001",
        failure_reason="invalid_password", http_status=401,
    )  # fmt: skip


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_dashboard_draws_its_charts_in_the_browser(staff_browser, size):
    an_hour_of_booth_work()
    page = staff_browser.page(size)
    outside = []
    page.on(
        "request", lambda request: outside.append(request.url) if "127.0.0.1" not in request.url else None
    )
    page.goto("/admin/")
    page.click("#stats-link a")
    page.wait_for_selector(".stats-dashboard[data-charts-drawn='true']")
    assert page.title().startswith("Статистика")
    assert page.inner_text("[data-card='images']") == "12"
    assert page.inner_text("[data-card='timeouts']") == "3"
    for canvas in ("#outcomes-chart", "#latency-chart"):
        width, height = page.eval_on_selector(canvas, "c => [c.width, c.height]")
        assert width > 100 and height > 100, f"{canvas} is drawn"
    assert "Нет ответа за 48 с." in page.inner_text(".stats-failures")
    assert outside == [], "no CDN: everything comes from our server"
    staff_browser.screenshot(page, f"stats-dashboard-{size}")
