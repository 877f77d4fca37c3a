"""/admin/stats/dashboard/: staff only, the figures of the period, linked from the admin index."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job

pytestmark = pytest.mark.django_db


def booth_job(state: str, *, minutes_ago: int, seconds: float, **extra) -> Job:
    created = timezone.now() - timedelta(minutes=minutes_ago)
    return Job.objects.create(
        id=uuid.uuid4(),
        slot_id="slot-003",
        provider="gemini",
        state=state,
        created_at=created,
        expires_at=created + timedelta(seconds=48),
        claimed_at=created + timedelta(seconds=1),
        finalized_at=created + timedelta(seconds=seconds),
        **extra,
    )


def test_the_dashboard_is_for_staff_only(client, studio):
    response = client.get(reverse("stats-dashboard"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_dashboard_shows_the_periods_figures_slots_and_failures(admin_client, studio):
    booth_job("succeeded", minutes_ago=3, seconds=6)
    booth_job("succeeded", minutes_ago=2, seconds=8)
    booth_job(
        "failed", minutes_ago=1, seconds=3, failure_reason="provider_error", failure_message="SAFETY: blocked"
    )
    booth_job("succeeded", minutes_ago=1, seconds=2, is_test=True)
    response = admin_client.get(reverse("stats-dashboard"), {"period": "24h"})
    assert response.status_code == 200
    cards = response.context["cards"]
    assert (cards["images"], cards["errors"], cards["success_percent"]) == (2, 1, 66.7)
    row = next(row for row in response.context["slots"] if row["slot"].id == "slot-003")
    assert row["ingests"] == 3
    assert "SAFETY: blocked" in row["last_error"]
    assert [failure["failure_message"] for failure in response.context["failures"]] == ["SAFETY: blocked"]
    page = response.content.decode()
    assert 'id="outcomes-chart"' in page and 'id="latency-chart"' in page
    assert "stats/vendor/chart.umd.min.js" in page, "the chart library is a static file, no CDN"
    assert "Статистика" in page


def test_the_admin_index_links_to_the_dashboard(admin_client, studio):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("stats-dashboard") in page
