"""PgBouncer mode: DATABASE_URL through a transaction pooler, LISTEN_DATABASE_URL straight to PostgreSQL.

The two URLs are told apart by their database user: the direct one logs in as a role of its own, so
``pg_stat_activity`` and ``pg_locks`` show which URL each connection came from.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from conftest import BASE_DIR, INGEST_PASSWORD, Service, child_environment, database_url, free_port
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from photochanger.db import session_advisory_lock
from slots.models import Slot
from slots.services import StudioSettingsChange, studio_settings_update

pytestmark = pytest.mark.django_db(transaction=True)

DIRECT_ROLE = "photochanger_direct"
SYNC_SECONDS = 20


@pytest.fixture
def direct_url() -> Iterator[str]:
    """A URL to the test database as another role: what LISTEN_DATABASE_URL would be."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [DIRECT_ROLE])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {DIRECT_ROLE} LOGIN")
    db = connection.settings_dict
    if str(db["HOST"]).startswith("/"):
        yield f"postgresql://{DIRECT_ROLE}@/{db['NAME']}?host={db['HOST']}&port={db['PORT'] or 5432}"
    else:
        yield f"postgresql://{DIRECT_ROLE}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def connections_of(application_name: str) -> list[tuple[str, str]]:
    """(user, last statement) of each connection with this application_name."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT usename, query FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
            [application_name],
        )
        return [(str(user), str(query)) for user, query in cursor.fetchall()]


def test_with_listen_database_url_web_and_worker_listen_there_and_query_through_database_url(
    service: Service, studio: Any, settings: Any, fake_gemini: Any, direct_url: str
) -> None:
    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    studio_settings_update(change=StudioSettingsChange(sync_response_seconds=SYNC_SECONDS))
    Slot.objects.filter(id="slot-001").update(
        provider="gemini", operation="image_edit", settings={"prompt": "make it art"}, is_active=True
    )
    fake_gemini.delay = 0.0
    # Only the NOTIFYs, which travel on the LISTEN connections, can get the photo answered in time.
    env = {
        "LISTEN_DATABASE_URL": direct_url,
        "WORKER_POLL_SECONDS": "3600",
        "INGEST_WAITER_RECHECK_SECONDS": "3600",
    }
    web_port = free_port()
    web = service.start_web_process(web_port, {**env, "DATABASE_APPLICATION_NAME": "bouncer-web"})
    try:
        service.start_worker(env={**env, "DATABASE_APPLICATION_NAME": "bouncer-worker"})
        photo = make_jpeg(160, 120)
        answer = booth_post(
            web_port, "/ingest/slot-001", multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
        )
        assert answer.status == 200, answer.body[:300]
        assert answer.elapsed < SYNC_SECONDS / 2, "woken by NOTIFY, not at the end of the window"

        pooled_user = str(connection.settings_dict["USER"] or "postgres")
        for process in ("bouncer-web", "bouncer-worker"):
            listens = connections_of(f"{process}-listen")
            assert listens, f"{process} has a LISTEN connection"
            assert {user for user, _ in listens} == {DIRECT_ROLE}, (
                f"{process} listens over LISTEN_DATABASE_URL"
            )
            assert all(query.startswith("LISTEN ") for _, query in listens)
            queries = connections_of(process)
            assert queries, f"{process} has connections of its pool"
            assert {user for user, _ in queries} == {pooled_user}, f"{process} queries over DATABASE_URL"
    finally:
        service.stop_workers()
        web.stop()


def test_the_session_advisory_lock_is_held_on_the_listen_database_url_connection(
    settings: Any, direct_url: str
) -> None:
    settings.LISTEN_DATABASE_URL = direct_url
    key = 0x4B5F54455354

    with session_advisory_lock(key) as acquired:
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT activity.usename, activity.application_name
                     FROM pg_locks AS lock JOIN pg_stat_activity AS activity USING (pid)
                    WHERE lock.locktype = 'advisory' AND lock.granted
                      AND (lock.classid::bigint << 32) + lock.objid::bigint = %s""",
                [key],
            )
            holders = cursor.fetchall()
        with session_advisory_lock(key) as acquired_twice:
            pass

    assert acquired is True
    assert acquired_twice is False, "a second holder is refused while the first holds it"
    assert [user for user, _ in holders] == [DIRECT_ROLE]
    assert holders[0][1].endswith("-lock")
    with session_advisory_lock(key) as acquired_again:
        assert acquired_again is True, "released when the block ended"


SETTINGS_AND_CONNECTION = textwrap.dedent(
    """
    import json
    import django
    django.setup()
    from django.db import connection
    connection.ensure_connection()
    print(json.dumps({
        "cursor": connection.connection.cursor_factory.__name__,
        "prepare_threshold": connection.connection.prepare_threshold,
        "server_side_cursors_disabled": connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS", False),
    }))
    connection.close()
    """
)


@pytest.mark.parametrize(
    ("listen_url", "expected"),
    [
        (
            False,
            {
                "cursor": "ServerBindingCursor",
                "prepare_threshold": None,
                "server_side_cursors_disabled": False,
            },
        ),
        (True, {"cursor": "Cursor", "prepare_threshold": None, "server_side_cursors_disabled": True}),
    ],
    ids=["direct", "behind-pgbouncer"],
)
def test_behind_pgbouncer_the_apps_connections_bind_on_the_client_and_prepare_nothing(
    direct_url: str, listen_url: bool, expected: dict[str, Any]
) -> None:
    env = child_environment({"DATABASE_URL": database_url(), "PHOTOCHANGER_TESTING": "1"})
    if listen_url:
        env["LISTEN_DATABASE_URL"] = direct_url
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_AND_CONNECTION],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected
