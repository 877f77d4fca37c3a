"""GET /public/media/<id>: random ids, valid only while the job lives, 410 afterwards, no listing."""

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from jobs.models import Job
from media import storage
from media.services import public_link_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_job(studio, service, settings):
    settings.PUBLIC_BASE_URL = service.base_url
    now = timezone.now()
    storage.delete("inputs/link-test.jpg")
    storage.write_new("inputs/link-test.jpg", b"\xff\xd8\xff photo bytes")
    yield Job.objects.create(
        slot_id="slot-001",
        provider="turbotext",
        state="processing",
        created_at=now,
        expires_at=now + timedelta(seconds=30),
    )
    storage.delete("inputs/link-test.jpg")  # the service's media root is shared by later tests


def test_link_serves_the_file_while_the_job_lives(service, live_job):
    url = public_link_create(job_id=live_job.id, path="inputs/link-test.jpg", mime_type="image/jpeg")
    media_id = url.rsplit("/", 1)[-1]
    assert len(media_id) >= 32, "ids are long and random"
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"\xff\xd8\xff photo bytes"
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "no-store"


def test_link_lives_no_longer_than_the_ttl(service, live_job, settings):
    from slots.models import StudioSettings

    StudioSettings.objects.update(public_link_ttl_seconds=5)
    url = public_link_create(job_id=live_job.id, path="inputs/link-test.jpg", mime_type="image/jpeg")
    from media.models import MediaObject

    link = MediaObject.objects.get(id=url.rsplit("/", 1)[-1])
    assert link.expires_at == min(live_job.expires_at, link.created_at + timedelta(seconds=5))
    MediaObject.objects.filter(id=link.id).update(expires_at=timezone.now())
    assert httpx.get(url).status_code == 410


def test_unknown_ids_get_404_and_nothing_is_listed(service, studio):
    assert httpx.get(f"{service.base_url}/public/media/not-a-real-id").status_code == 404
    assert httpx.get(f"{service.base_url}/public/media/").status_code == 404


def test_no_link_for_a_final_job(service, live_job):
    from photochanger.errors import ServiceError

    Job.objects.filter(id=live_job.id).update(state="succeeded", finalized_at=timezone.now())
    with pytest.raises(ServiceError):
        public_link_create(job_id=live_job.id, path="inputs/link-test.jpg", mime_type="image/jpeg")
