"""Staff test a slot from the admin: the photo gets the booth's checks and becomes a queued test job with
the slot's saved settings; a page follows it to its outcome; the slot's gallery shows its results."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.models import Job
from jobs.selectors import slot_recent_results
from jobs.states import JobState
from jobs.tests.booth import make_jpeg, pad_jpeg
from jobs.tests.queue import make_finished_job
from media.models import MediaObject
from slots.models import Slot
from slots.services import slot_update
from stats.models import ProcessingLogEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def grayscale_slot(media_root):
    slot = Slot.objects.get(id="slot-001")
    return slot_update(
        slot=slot,
        fields={
            "provider": "local",
            "operation": "grayscale",
            "settings": {"quality": 80},
            "is_active": True,
        },
    )


def form_url(slot_id: str = "slot-001") -> str:
    return reverse("slot-test-run", args=[slot_id])


def status_url(job_id: uuid.UUID, slot_id: str = "slot-001") -> str:
    return reverse("slot-test-run-status", args=[slot_id, job_id])


def photo(data: bytes | None = None, name: str = "IMG_0001.JPG") -> SimpleUploadedFile:
    return SimpleUploadedFile(
        name, data if data is not None else make_jpeg(800, 600), content_type="image/jpeg"
    )


def stored_inputs(media_root) -> list[str]:
    folder = media_root / "inputs"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


# --- who may ---------------------------------------------------------------------------------------


def test_the_test_run_pages_are_at_the_slots_admin_address():
    job_id = uuid.uuid4()
    assert form_url() == "/admin/slots/slot/slot-001/test-run/"
    assert status_url(job_id) == f"/admin/slots/slot/slot-001/test-run/{job_id}/"


def test_anonymous_visitors_are_sent_to_the_login_page(client, grayscale_slot):
    for response in (
        client.get(form_url()),
        client.post(form_url(), {"photo": photo()}),
        client.get(status_url(uuid.uuid4())),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=/admin/slots/slot/slot-001/test-run/")
    assert not Job.objects.exists()


def test_staff_who_may_not_change_slots_cannot_run_a_test(client, grayscale_slot):
    user = get_user_model().objects.create_user(username="viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_slot"))
    client.force_login(user)

    assert client.get(form_url()).status_code == 403
    assert client.post(form_url(), {"photo": photo()}).status_code == 403
    assert client.get(status_url(uuid.uuid4())).status_code == 403
    assert not Job.objects.exists()


def test_staff_who_may_change_slots_can_run_a_test(client, grayscale_slot):
    user = get_user_model().objects.create_user(username="operator", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_slot"))
    client.force_login(user)

    response = client.post(form_url(), {"photo": photo()})

    assert response.status_code == 302
    assert Job.objects.get().request_metadata["test_run"]["started_by"] == "operator"


def test_an_unknown_slot_is_not_found(admin_client, media_root):
    assert admin_client.get(form_url("slot-999")).status_code == 404


# --- the form and what it starts -----------------------------------------------------------------


def test_the_form_offers_an_upload_and_the_sample_photo_and_shows_the_slots_gallery(
    admin_client, grayscale_slot
):
    page = admin_client.get(form_url()).content.decode()

    assert 'enctype="multipart/form-data"' in page and 'type="file"' in page
    assert 'name="use_sample"' in page and "Запустить с образцом фото" in page
    assert "Тестовый запуск: slot-001" in page
    assert 'id="results"' in page and "Результатов пока нет." in page


def test_a_photo_becomes_a_queued_test_job_with_the_slots_saved_settings(
    admin_client, grayscale_slot, media_root
):
    before = timezone.now()

    response = admin_client.post(form_url(), {"photo": photo()})

    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == status_url(job.id)
    assert (job.state, job.is_test, job.slot_id) == ("pending", True, "slot-001")
    assert (job.provider, job.operation, job.provider_settings) == ("local", "grayscale", {"quality": 80})
    assert before <= job.created_at <= timezone.now()
    assert job.expires_at - job.created_at == timedelta(seconds=48), "the studio's sync window"
    assert job.request_metadata == {
        "test_run": {"started_by": "admin", "filename": "IMG_0001.JPG", "sample_photo": False}
    }
    media = MediaObject.objects.get(job=job)
    assert (media.kind, media.mime_type) == ("input", "image/jpeg")
    assert (media_root / media.path).read_bytes() == make_jpeg(800, 600)
    accepted = ProcessingLogEntry.objects.get(job=job)
    assert (accepted.event, accepted.client_ip) == ("ingest_accepted", None)


def test_the_sample_photo_needs_no_upload(admin_client, grayscale_slot, media_root):
    response = admin_client.post(form_url(), {"use_sample": "1"})

    job = Job.objects.get()
    assert response.status_code == 302
    assert job.request_metadata["test_run"]["sample_photo"] is True
    assert MediaObject.objects.get(job=job).size_bytes > 100_000


def test_a_submission_without_a_photo_asks_for_one(admin_client, grayscale_slot):
    response = admin_client.post(form_url(), {})
    assert response.status_code == 200
    assert "Выберите фото или запустите тест с образцом фото." in response.content.decode()
    assert not Job.objects.exists()


def test_a_file_that_is_no_image_is_refused_in_words_and_leaves_nothing(
    admin_client, grayscale_slot, media_root
):
    response = admin_client.post(form_url(), {"photo": photo(b"%PDF-1.4 not a photo", name="menu.jpg")})

    assert response.status_code == 200
    assert "Тестовый запуск не начат" in response.content.decode()
    assert (
        "Файл не является изображением JPEG, PNG, WebP или HEIC либо повреждён." in response.content.decode()
    )
    assert not Job.objects.exists() and stored_inputs(media_root) == []


def test_a_truncated_photo_is_refused_as_damaged_as_the_booth_would_be(
    admin_client, grayscale_slot, media_root
):
    whole = make_jpeg(800, 600, noise=True)

    response = admin_client.post(form_url(), {"photo": photo(whole[: len(whole) // 2])})

    assert response.status_code == 200
    assert (
        "Файл не является изображением JPEG, PNG, WebP или HEIC либо повреждён." in response.content.decode()
    )
    assert not Job.objects.exists() and stored_inputs(media_root) == []


def test_a_photo_over_the_slots_size_limit_is_refused_as_the_booth_would_be(
    admin_client, grayscale_slot, media_root
):
    slot_update(slot=grayscale_slot, fields={"size_limit_mb": 1})

    response = admin_client.post(form_url(), {"photo": photo(pad_jpeg(make_jpeg(64, 48), 1024 * 1024 + 1))})

    assert response.status_code == 200
    assert "Фото слишком большое: этот слот принимает до 1 МБ" in response.content.decode()
    assert not Job.objects.exists() and stored_inputs(media_root) == []


def test_an_inactive_slot_with_a_valid_configuration_can_be_test_run(admin_client, grayscale_slot):
    slot_update(slot=grayscale_slot, fields={"is_active": False})

    page = admin_client.get(form_url()).content.decode()
    assert "нет — тестовый запуск всё равно возможен" in page
    assert admin_client.post(form_url(), {"photo": photo()}).status_code == 302
    assert Job.objects.get().is_test


def test_a_slot_whose_configuration_could_not_be_activated_cannot_be_test_run(admin_client, media_root):
    # A fresh slot: Gemini without a prompt (and without a key) would be refused on activation.
    slot = Slot.objects.get(id="slot-002")
    slot_update(slot=slot, fields={"provider": "gemini", "operation": "image_edit", "settings": {}})

    page = admin_client.get(form_url("slot-002")).content.decode()
    assert "Настройки этого слота пока нельзя проверить" in page
    assert "prompt" in page
    assert 'type="file"' not in page

    response = admin_client.post(form_url("slot-002"), {"photo": photo()})
    assert response.status_code == 200 and "prompt" in response.content.decode()
    assert not Job.objects.exists()


# --- following a test run ------------------------------------------------------------------------


def _start(admin_client) -> Job:
    response = admin_client.post(form_url(), {"photo": photo()})
    return Job.objects.get(id=response["Location"].rstrip("/").rsplit("/", 1)[-1])


def test_the_status_page_refreshes_itself_while_the_job_is_live(admin_client, grayscale_slot):
    job = _start(admin_client)

    page = admin_client.get(status_url(job.id)).content.decode()

    assert '<meta http-equiv="refresh" content="1">' in page
    assert "Ожидает" in page and "Страница обновляется сама" in page


def test_the_status_page_shows_the_result_the_outcome_and_the_time_taken(
    admin_client, grayscale_slot, media_root
):
    job = _start(admin_client)
    result = make_jpeg(320, 240)
    storage_path = f"results/{job.id}.jpg"
    (media_root / "results").mkdir()
    (media_root / storage_path).write_bytes(result)
    (media_root / "thumbnails").mkdir()
    (media_root / "thumbnails" / "r.jpg").write_bytes(result)
    Job.objects.filter(id=job.id).update(state="processing", claimed_by="w", claim_count=1)
    assert services.job_finalize(
        job_id=job.id,
        outcome=services.Outcome(
            state=JobState.SUCCEEDED,
            result=services.StoredResult(
                path=storage_path,
                mime_type="image/jpeg",
                size_bytes=len(result),
                sha256="0",
                thumbnail_path="thumbnails/r.jpg",
            ),
        ),
    )
    job.refresh_from_db()

    page = admin_client.get(status_url(job.id)).content.decode()

    assert 'http-equiv="refresh"' not in page, "a final job's page stays still"
    assert "Успешно" in page
    assert job.finalized_at is not None
    seconds = (job.finalized_at - job.created_at).total_seconds()
    assert f"Заняло: {seconds:.1f}".replace(".", ",") in page
    assert f'src="/admin/jobs/job/{job.id}/thumbnail/result/"' in page
    assert f'href="/public/results/{job.id}"' in page
    assert admin_client.get(f"/admin/jobs/job/{job.id}/thumbnail/result/").content == result
    gallery = re.search(r'<section class="result-gallery" id="results">.*?</section>', page, re.S)
    assert gallery is not None and str(job.id)[:8] in gallery.group(0), "the gallery below shows it too"


def test_the_status_page_says_why_a_test_run_failed_in_words(admin_client, grayscale_slot):
    job = _start(admin_client)
    Job.objects.filter(id=job.id).update(state="processing")
    services.job_finalize(
        job_id=job.id,
        outcome=services.Outcome(
            state=JobState.FAILED,
            failure_reason="provider_error",
            failure_message="the photo cannot be decoded",
        ),
    )

    page = admin_client.get(status_url(job.id)).content.decode()

    assert "Ошибка провайдера: the photo cannot be decoded" in page
    assert "/public/results/" not in page.split('id="results"')[0]


def test_a_test_run_nobody_processed_by_its_deadline_is_shown_as_timed_out(
    admin_client, grayscale_slot, media_root
):
    job = _start(admin_client)
    Job.objects.filter(id=job.id).update(
        created_at=timezone.now() - timedelta(seconds=60), expires_at=timezone.now() - timedelta(seconds=12)
    )

    page = admin_client.get(status_url(job.id)).content.decode()

    assert 'http-equiv="refresh"' not in page
    assert "Истекло время" in page and "Провайдер не ответил вовремя" in page
    job.refresh_from_db()
    assert (job.state, job.failure_reason) == ("timeout", "provider_timeout")
    assert stored_inputs(media_root) == [], "the timeout released the photo"


def test_the_status_page_shows_only_this_slots_test_runs(admin_client, grayscale_slot, media_root):
    booth_job = make_finished_job(slot_id="slot-001", with_thumbnails=False)
    test_job = _start(admin_client)
    assert admin_client.get(status_url(booth_job.id)).status_code == 404
    assert admin_client.get(status_url(test_job.id, slot_id="slot-002")).status_code == 404
    assert admin_client.get(status_url(uuid.uuid4())).status_code == 404


# --- the gallery ---------------------------------------------------------------------------------


def test_the_gallery_lists_a_slots_succeeded_jobs_newest_first_ten_at_a_time(media_root):
    now = timezone.now()
    jobs = [
        make_finished_job(
            created_at=now - timedelta(minutes=minutes), with_thumbnails=False, is_test=minutes == 3
        )
        for minutes in range(1, 13)
    ]
    make_finished_job(created_at=now, state="failed", with_thumbnails=False)
    make_finished_job(created_at=now, slot_id="slot-002", with_thumbnails=False)

    first = slot_recent_results(slot_id="slot-001")
    second = slot_recent_results(slot_id="slot-001", offset=10)

    assert [item.job_id for item in first.items] == [job.id for job in jobs[:10]]
    assert first.has_more and first.page == 1
    assert [item.job_id for item in second.items] == [job.id for job in jobs[10:]]
    assert not second.has_more and second.page == 2
    assert [item.is_test for item in first.items][:3] == [False, False, True], (
        "test runs are included, marked"
    )
    item = first.items[0]
    assert item.download_url == f"/public/results/{item.job_id}"
    assert item.duration_seconds == pytest.approx(3.2)
    assert item.result_expires_at == jobs[0].result_expires_at and not item.expired


def test_an_expired_result_is_shown_as_expired_without_a_download(admin_client, grayscale_slot, media_root):
    live = make_finished_job()
    expired = make_finished_job(
        created_at=timezone.now() - timedelta(hours=80), result_expires_in=timedelta(hours=72)
    )

    items = {item.job_id: item for item in slot_recent_results(slot_id="slot-001").items}
    assert (items[expired.id].expired, items[expired.id].download_url, items[expired.id].thumbnail_url) == (
        True,
        "",
        "",
    )
    assert items[live.id].thumbnail_url == f"/admin/jobs/job/{live.id}/thumbnail/result/"

    page = admin_client.get(form_url()).content.decode()
    assert "Срок хранения истёк: результат удалён" in page
    assert f'href="/public/results/{live.id}"' in page
    assert f'href="/public/results/{expired.id}"' not in page


def test_the_gallery_pages_with_more_and_newer_links(admin_client, grayscale_slot, media_root):
    now = timezone.now()
    jobs = [
        make_finished_job(created_at=now - timedelta(minutes=minutes), with_thumbnails=False)
        for minutes in range(1, 13)
    ]

    first = admin_client.get(form_url()).content.decode()
    assert 'href="?results_page=2#results"' in first and "Ещё" in first
    assert str(jobs[10].id) not in first

    second = admin_client.get(f"{form_url()}?results_page=2").content.decode()
    assert str(jobs[10].id) in second and str(jobs[0].id) not in second
    assert 'href="?results_page=1#results"' in second and "Новее" in second
    assert "results_page=3" not in second

    assert admin_client.get(f"{form_url()}?results_page=nonsense").status_code == 200
