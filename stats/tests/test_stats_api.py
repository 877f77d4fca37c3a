"""GET /api/stats/global and /api/stats/<slot_id>: figures against a hand-built set of jobs and log rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from jobs.models import Job
from slots.models import Slot
from stats.models import LogEvent, ProcessingLogEntry

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PERIOD = {"from": "2026-11-20T10:00:00Z", "to": "2026-11-20T13:00:00Z", "group_by": "hour"}


def job(slot: str, provider: str, state: str, at: datetime, *, total: float = 0, wait: float = 0, **extra):
    return Job.objects.create(
        id=uuid.uuid4(),
        slot_id=slot,
        provider=provider,
        state=state,
        created_at=at,
        expires_at=at + timedelta(seconds=48),
        claimed_at=at + timedelta(seconds=wait) if wait else None,
        finalized_at=at + timedelta(seconds=total) if total else None,
        **extra,
    )


def refusal(slot: str, reason: str, at: datetime) -> None:
    ProcessingLogEntry.objects.create(
        created_at=at, event=LogEvent.INGEST_REJECTED, slot_id=slot, failure_reason=reason, http_status=401
    )


@pytest.fixture
def history(studio):
    Slot.objects.filter(id="slot-001").update(provider="gemini")
    Slot.objects.filter(id="slot-002").update(provider="local")
    # 10:00–11:00: three succeeded gemini jobs (2, 4, 6 s), one timeout, one provider error.
    for seconds in (2, 4, 6):
        job("slot-001", "gemini", "succeeded", T0 + timedelta(minutes=5), total=seconds, wait=1)
    job("slot-001", "gemini", "timeout", T0 + timedelta(minutes=10), total=48, wait=2)
    job(
        "slot-001",
        "gemini",
        "failed",
        T0 + timedelta(minutes=20),
        total=3,
        wait=1,
        failure_reason="provider_error",
    )
    # 11:00–12:00 nothing at all (an empty bucket). 12:00–13:00: one local success, one cancelled.
    job("slot-002", "local", "succeeded", T0 + timedelta(hours=2, minutes=1), total=1, wait=0.5)
    job("slot-002", "local", "cancelled", T0 + timedelta(hours=2, minutes=2), total=5)
    # A staff test run and a job outside the period: neither counts.
    job("slot-001", "gemini", "succeeded", T0 + timedelta(minutes=30), total=1, wait=0.1, is_test=True)
    job("slot-001", "gemini", "succeeded", T0 - timedelta(minutes=1), total=1, wait=0.1)
    refusal("slot-001", "invalid_password", T0 + timedelta(minutes=7))
    refusal("slot-001", "invalid_password", T0 + timedelta(minutes=8))
    refusal("slot-002", "payload_too_large", T0 + timedelta(hours=2, minutes=30))


def test_global_stats_count_buckets_and_totals_from_the_database(admin_client, history):
    body = admin_client.get(reverse("stats-global"), PERIOD).json()
    assert (body["from"], body["to"], body["group_by"]) == (
        "2026-11-20T10:00:00Z",
        "2026-11-20T13:00:00Z",
        "hour",
    )
    assert [bucket["start"] for bucket in body["buckets"]] == [
        "2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z",
    ]  # fmt: skip
    first, empty, last = body["buckets"]
    assert (first["ingests"], first["succeeded"], first["timeouts"], first["provider_errors"]) == (5, 3, 1, 1)
    assert (first["p50_ms"], first["p95_ms"]) == (4000, 5800), "percentile_cont over 2, 4 and 6 s"
    assert first["provider_p50_ms"] == 3000, "claim to finalize: 1, 3 and 5 s"
    assert first["rejected"] == {"invalid_password": 2}
    assert empty["ingests"] == 0 and empty["p50_ms"] is None and empty["rejected"] == {}
    assert (last["ingests"], last["succeeded"], last["cancelled"]) == (2, 1, 1)
    assert last["rejected"] == {"payload_too_large": 1}
    totals = body["totals"]
    assert (totals["ingests"], totals["succeeded"], totals["timeouts"], totals["cancelled"]) == (7, 4, 1, 1)
    assert totals["rejected"] == {"invalid_password": 2, "payload_too_large": 1}
    assert totals["p50_ms"] == 3000, "median of 1, 2, 4, 6 s"
    slots = {row["slot_id"]: row for row in body["slots"]}
    assert (slots["slot-001"]["ingests"], slots["slot-002"]["ingests"]) == (5, 2)


def test_the_provider_filter_keeps_that_providers_jobs_and_its_slots_refusals(admin_client, history):
    body = admin_client.get(reverse("stats-global"), {**PERIOD, "provider": "local"}).json()
    assert body["totals"]["ingests"] == 2
    assert body["totals"]["rejected"] == {"payload_too_large": 1}
    assert [row["slot_id"] for row in body["slots"]] == ["slot-002"]


def test_slot_stats_cover_that_slot_only_and_days_group_the_same_figures(admin_client, history):
    url = reverse("stats-slot", args=["slot-002"])
    body = admin_client.get(url, {**PERIOD, "group_by": "day"}).json()
    assert [bucket["start"] for bucket in body["buckets"]] == ["2026-11-20T00:00:00Z"]
    assert body["totals"]["ingests"] == 2
    assert "slots" not in body


def test_test_runs_are_left_out(admin_client, history):
    body = admin_client.get(reverse("stats-slot", args=["slot-001"]), PERIOD).json()
    assert body["totals"]["succeeded"] == 3, "the staff test run at 10:30 is not a booth photo"


def test_the_default_period_is_the_last_24_hours_by_hour(admin_client, studio):
    body = admin_client.get(reverse("stats-global")).json()
    assert body["group_by"] == "hour"
    assert 24 <= len(body["buckets"]) <= 25


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"from": "yesterday"}, "from"),
        ({"group_by": "minute"}, "group_by"),
        ({"from": "2026-11-20T12:00:00Z", "to": "2026-11-20T10:00:00Z"}, "before"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "buckets"),
        ({"provider": "nope"}, "provider"),
    ],
)
def test_bad_queries_get_400_with_the_error_body(admin_client, studio, query, words):
    response = admin_client.get(reverse("stats-global"), query)
    assert response.status_code == 400
    assert response.json()["failure_reason"] == "invalid_request"
    assert words in response.json()["message"]


def test_an_unknown_slot_gets_404(admin_client, studio):
    response = admin_client.get(reverse("stats-slot", args=["slot-099"]))
    assert response.status_code == 404
    assert response.json()["failure_reason"] == "slot_not_found"


def test_anonymous_and_non_staff_users_are_refused_with_json(client, studio, django_user_model):
    assert client.get(reverse("stats-global")).status_code == 403
    assert "detail" in client.get(reverse("stats-global")).json()
    user = django_user_model.objects.create_user(username="guest", password="guest-pass-1")
    client.force_login(user)
    assert client.get(reverse("stats-slot", args=["slot-001"])).status_code == 403
