"""The jobs list, the job page and the thumbnails in the staff console; the read-only processing log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.tests.queue import make_finished_job
from photochanger.admin_lists import EstimatedCountPaginator
from stats.models import ProcessingLogEntry

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:jobs_job_changelist")
LOG = reverse("admin:stats_processinglogentry_changelist")


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def staff_client(client, *permissions: str):
    user = get_user_model().objects.create_user(username="clerk", password="x", is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client.force_login(user)
    return client


def listed_ids(response) -> list[uuid.UUID]:
    return [job.id for job in response.context["cl"].result_list]


# --- who may see what ----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page_from_every_jobs_page(client, media_root):
    job = make_finished_job()
    pages = [
        JOBS,
        reverse("admin:jobs_job_change", args=[job.id]),
        reverse("admin:jobs_job_thumbnail", args=[job.id, "result"]),
        LOG,
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url


def test_staff_without_permission_to_see_jobs_or_slots_get_no_thumbnail(client, media_root):
    job = make_finished_job()
    url = reverse("admin:jobs_job_thumbnail", args=[job.id, "result"])
    assert staff_client(client).get(url).status_code == 403


def test_staff_who_may_see_slots_get_the_thumbnails_their_gallery_shows(client, media_root):
    job = make_finished_job()
    response = staff_client(client, "slots.view_slot").get(
        reverse("admin:jobs_job_thumbnail", args=[job.id, "result"])
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response.content == (media_root / job.result_thumbnail_path).read_bytes()
    assert "private" in response["Cache-Control"]


def test_a_thumbnail_that_does_not_exist_or_expired_is_not_found(admin_client, media_root):
    without = make_finished_job(with_thumbnails=False)
    expired = make_finished_job(
        created_at=timezone.now() - timedelta(hours=80), result_expires_in=timedelta(hours=72)
    )
    for job_id, kind in [
        (without.id, "result"),
        (without.id, "input"),
        (expired.id, "result"),
        (uuid.uuid4(), "input"),
        (expired.id, "original"),
    ]:
        assert admin_client.get(reverse("admin:jobs_job_thumbnail", args=[job_id, kind])).status_code == 404
    assert (
        admin_client.get(reverse("admin:jobs_job_thumbnail", args=[expired.id, "input"])).status_code == 200
    )


# --- the list ------------------------------------------------------------------------------------


def test_the_jobs_list_shows_short_id_slot_provider_coloured_state_duration_and_thumbnail(
    admin_client, media_root
):
    job = make_finished_job(slot_id="slot-003", provider="local", seconds=3.24)
    failed = make_finished_job(state="failed", failure_reason="provider_error", with_thumbnails=False)

    page = admin_client.get(JOBS).content.decode()

    assert f'href="/admin/jobs/job/{job.id}/change/' in page
    assert f">{str(job.id)[:8]}</a>" in page
    assert "slot-003" in page
    assert '<span class="job-state job-state--succeeded">Успешно</span>' in page
    assert '<span class="job-state job-state--failed">' in page
    assert "3,2 с" in page
    assert f'src="/admin/jobs/job/{job.id}/thumbnail/result/"' in page
    assert f"/admin/jobs/job/{failed.id}/thumbnail/" not in page
    assert "jobs/admin.css" in page
    local = timezone.localtime(job.created_at)
    assert local.strftime("%d.%m.%Y %H:%M:%S") in page, "times to the second"


def test_the_jobs_list_filters_by_slot_provider_state_failure_test_run_and_dates(admin_client, media_root):
    day = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    booth = make_finished_job(slot_id="slot-002", provider="local", created_at=day, with_thumbnails=False)
    other_slot = make_finished_job(
        slot_id="slot-004", provider="gemini", created_at=day, with_thumbnails=False
    )
    failed = make_finished_job(
        slot_id="slot-002",
        state="failed",
        provider="gemini",
        failure_reason="provider_error",
        created_at=day - timedelta(days=2),
        with_thumbnails=False,
    )
    test_run = make_finished_job(
        slot_id="slot-002", is_test=True, created_at=day + timedelta(days=1), with_thumbnails=False
    )

    def ids(query: str) -> set[uuid.UUID]:
        response = admin_client.get(f"{JOBS}?{query}")
        assert response.status_code == 200, query
        assert "?e=1" not in response.get("Location", ""), query
        return set(listed_ids(response))

    assert ids("slot__id__exact=slot-004") == {other_slot.id}
    assert ids("provider=gemini") == {other_slot.id, failed.id}
    assert ids("state__exact=failed") == {failed.id}
    assert ids("failure_reason=provider_error") == {failed.id}
    assert ids("is_test__exact=1") == {test_run.id}
    assert ids("is_test__exact=0") == {booth.id, other_slot.id, failed.id}
    assert ids("date_from=2026-03-10&date_to=2026-03-10") == {booth.id, other_slot.id}
    assert ids("date_from=2026-03-11") == {test_run.id}
    assert ids("date_to=2026-03-09") == {failed.id}
    assert ids("date_from=2026-03-10&slot__id__exact=slot-002") == {booth.id, test_run.id}


def test_the_date_filter_keeps_the_other_filters_and_refuses_a_date_that_is_no_date(admin_client, media_root):
    page = admin_client.get(f"{JOBS}?state__exact=failed").content.decode()
    assert '<input type="hidden" name="state__exact" value="failed">' in page
    assert 'type="date" name="date_from"' in page

    response = admin_client.get(f"{JOBS}?date_from=yesterday")
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_a_job_is_found_by_its_short_id(admin_client, media_root):
    job = make_finished_job(with_thumbnails=False)
    make_finished_job(with_thumbnails=False)
    assert listed_ids(admin_client.get(f"{JOBS}?q={str(job.id)[:8]}")) == [job.id]
    assert listed_ids(admin_client.get(f"{JOBS}?q={job.id}")) == [job.id]


def _bulk_insert_jobs(count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO jobs_job (id, slot_id, state, provider, operation, provider_settings, templates,
                                  provider_job_reference, created_at, expires_at, claimed_by, claim_count,
                                  provider_calls, failure_reason, failure_message, result_path, result_mime_type,
                                  result_sha256, request_metadata)
            SELECT gen_random_uuid(), 'slot-001', 'succeeded', 'local', '', '{}', '[]', '',
                   now() - make_interval(secs => n), now() - make_interval(secs => n) + interval '48 seconds',
                   '', 1, 1, '', '', '', '', '', '{}'
              FROM generate_series(1, %s) AS n
            """,
            [count],
        )


@pytest.fixture
def table_statistics_restored():
    """ANALYZE writes the table's row estimate in place, outside the test's transaction, so rolling the
    test back would leave it behind: re-analyze the emptied table at the end."""
    yield
    Job.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_job")


def test_the_unfiltered_jobs_list_of_a_big_table_is_counted_from_the_estimate_without_count(
    admin_client, table_statistics_restored
):
    _bulk_insert_jobs(EstimatedCountPaginator.EXACT_COUNT_BELOW + 2000)
    with connection.cursor() as cursor:
        # Our transaction holds the table's statistics lock from here: autovacuum cannot move the estimate.
        cursor.execute("ANALYZE jobs_job")
    _bulk_insert_jobs(500)  # rows the estimate does not know about yet
    estimate = EstimatedCountPaginator.EXACT_COUNT_BELOW + 2000

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(JOBS)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert changelist.paginator.is_estimate
    assert changelist.result_count == estimate, "the planner's figure, not the 12,500 rows there are"
    counting = [query["sql"] for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]
    assert counting == [], counting
    page = response.content.decode()
    assert 'class="estimated-count"' in page and "около 12\xa0000 заданий" in page
    assert len(listed_ids(response)) == 50

    filtered = admin_client.get(f"{JOBS}?state__exact=succeeded")
    assert not filtered.context["cl"].paginator.is_estimate
    assert filtered.context["cl"].result_count == estimate + 500, "a filtered list is counted exactly"


def test_a_small_jobs_table_is_counted_exactly(admin_client, media_root):
    make_finished_job(with_thumbnails=False)
    make_finished_job(with_thumbnails=False)
    response = admin_client.get(JOBS)
    assert not response.context["cl"].paginator.is_estimate
    assert response.context["cl"].result_count == 2
    assert "2 задания" in response.content.decode()


# --- the job page --------------------------------------------------------------------------------


def test_the_job_page_shows_previews_timeline_metadata_and_never_a_password(admin_client, media_root):
    job = make_finished_job(
        seconds=4.5,
        request_metadata={
            "name": "DESKTOP-K968T3F",
            "version": "3.30.2",
            "survey_answer": ["yes", "blue"],
            "password": "should-never-show",
            "_upload": {"field": "fileToUpload", "filename": "IMG_0003.JPG", "size_bytes": 1234},
        },
    )

    response = admin_client.get(reverse("admin:jobs_job_change", args=[job.id]))

    assert response.status_code == 200
    page = response.content.decode()
    assert f'src="/admin/jobs/job/{job.id}/thumbnail/input/"' in page
    assert f'src="/admin/jobs/job/{job.id}/thumbnail/result/"' in page
    assert f'href="/public/results/{job.id}"' in page
    for words in ("Получено", "Взято обработчиком", "Завершено", "+0,1", "+4,5", "4,5 с", "1 вызов"):
        assert words in page, words
    assert timezone.localtime(job.finalized_at).strftime("%H:%M:%S") in page
    for words in (
        "Компьютер фотобудки",
        "DESKTOP-K968T3F",
        "Версия DSLR Remote Pro",
        "yes, blue",
        "IMG_0003.JPG",
    ):
        assert words in page, words
    assert "should-never-show" not in page
    assert 'name="_save"' not in page, "the job page is read-only"


def test_the_job_page_says_why_a_job_failed_in_words(admin_client, media_root):
    job = make_finished_job(
        state="failed",
        failure_reason="provider_error",
        failure_message="the photo cannot be decoded",
        with_thumbnails=False,
    )
    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.id])).content.decode()
    assert "Ошибка провайдера: the photo cannot be decoded" in page
    assert "нет превью" in page


# --- the processing log --------------------------------------------------------------------------


def test_the_processing_log_is_read_only_without_a_delete_action(admin_client):
    entry = ProcessingLogEntry.objects.create(
        created_at=timezone.now(), event="ingest_rejected", slot_id="slot-001", http_status=401
    )

    page = admin_client.get(LOG)
    assert page.status_code == 200
    assert "delete_selected" not in page.content.decode()
    assert not page.context["cl"].model_admin.get_actions(page.wsgi_request)
    assert admin_client.get(reverse("admin:stats_processinglogentry_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:stats_processinglogentry_delete", args=[entry.id])).status_code
        == 403
    )
    change = admin_client.post(
        reverse("admin:stats_processinglogentry_change", args=[entry.id]), {"slot_id": "x"}
    )
    assert change.status_code == 403
    assert ProcessingLogEntry.objects.get(id=entry.id).slot_id == "slot-001"


def test_the_processing_log_shows_times_to_the_second_and_filters_by_date(admin_client):
    moment = datetime(2026, 3, 10, 9, 15, 42, tzinfo=UTC)
    ProcessingLogEntry.objects.create(created_at=moment, event="ingest_accepted", slot_id="slot-001")
    ProcessingLogEntry.objects.create(
        created_at=moment - timedelta(days=1), event="ingest_rejected", slot_id="slot-001", http_status=401
    )

    page = admin_client.get(LOG).content.decode()
    assert timezone.localtime(moment).strftime("%d.%m.%Y %H:%M:%S") in page

    response = admin_client.get(f"{LOG}?date_from=2026-03-10&date_to=2026-03-10")
    assert [entry.created_at for entry in response.context["cl"].result_list] == [moment]
    assert len(admin_client.get(f"{LOG}?http_status=401").context["cl"].result_list) == 1
