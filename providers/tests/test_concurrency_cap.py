"""The per-provider concurrency cap holds across all worker processes (studio settings, job rows)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from jobs.models import Job
from jobs.tests.queue import set_provider_caps
from providers.tests.pipeline import configure_slot, post_photo
from slots.services import StudioSettingsChange, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def stop_workers_after_each_test(service):
    yield
    service.stop_workers()


def test_two_workers_never_exceed_a_cap_of_two_gemini_calls(service, studio, fake_gemini, settings):
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=20))
    set_provider_caps({"gemini": 2})
    for slot_id in ("slot-011", "slot-012"):
        configure_slot(slot_id, "gemini", "image_edit", {"prompt": "art"})
    for _ in range(2):
        service.start_worker("--concurrency", "8")
    fake_gemini.delay = 0.8

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(
            pool.map(lambda n: post_photo(service, ("slot-011", "slot-012")[n % 2])[1], range(6))
        )

    assert [response.status for response in responses] == [200] * 6
    assert fake_gemini.calls == 6
    assert fake_gemini.max_inflight == 2, "never more than the cap at once, across both workers"
    assert set(Job.objects.values_list("claim_count", flat=True)) == {1}
