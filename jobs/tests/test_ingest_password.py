"""The ingest password under pressure: lockouts decided before hashing, each wrong password hashed once,
guessers throttled per client and all together, booths with the right password never refused because
of other clients. Real uvicorn and PostgreSQL; other clients are other loopback addresses."""

from __future__ import annotations

import secrets

import pytest

from conftest import INGEST_PASSWORD, Service, free_port
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot
from stats.models import ProcessingLogEntry

pytestmark = pytest.mark.django_db(transaction=True)

HASHED_LINE = "ingest password: hashed a password not seen before"
PHOTO = make_jpeg()


@pytest.fixture
def local_slot(studio):
    Slot.objects.filter(id="slot-001").update(
        provider="local", operation="grayscale", settings={}, is_active=True
    )


def send(port: int, password: str, source: str = "127.0.0.1") -> int:
    body = multipart_body(booth_fields(PHOTO, password), photo=PHOTO)
    return booth_post(port, "/ingest/slot-001", body, source=source).status


def hashes_logged(service: Service) -> int:
    assert service.web is not None
    return service.web.output().count(HASHED_LINE)


def test_a_repeated_wrong_password_is_hashed_once_and_never_locks_the_booth_out(service, worker, local_slot):
    before = hashes_logged(service)
    statuses = [send(service.port, "old-password") for _ in range(8)]  # more than the 5 allowed
    assert statuses == [401] * 8, "a booth left on an old password gets a clear 401, not a lockout"
    assert hashes_logged(service) - before == 1, "the same wrong password is hashed only the first time"
    assert ProcessingLogEntry.objects.filter(password_guess=True).count() == 1
    assert send(service.port, INGEST_PASSWORD) == 200, "the right password from that client still works"


def test_the_right_password_is_hashed_once_then_remembered(service, worker, local_slot):
    before = hashes_logged(service)
    assert [send(service.port, INGEST_PASSWORD) for _ in range(3)] == [200, 200, 200]
    assert hashes_logged(service) - before == 1


def test_distinct_wrong_passwords_lock_that_client_out_before_any_hashing(service, worker, local_slot):
    # A web process of its own: a lockout is remembered in the process for a few seconds.
    port = free_port()
    web = service.start_web_process(port, {})
    try:
        guesses = [send(port, secrets.token_hex(6)) for _ in range(5)]
        assert guesses == [401] * 5
        assert web.output().count(HASHED_LINE) == 5

        assert send(port, secrets.token_hex(6)) == 429, "the sixth new guess is refused"
        assert send(port, INGEST_PASSWORD) == 429, "a locked-out client learns nothing, right or wrong"
        again = booth_post(port, "/ingest/slot-001", multipart_body(booth_fields(PHOTO, "x"), photo=PHOTO))
        assert again.status == 429
        assert not again.got_continue, "a client locked out a moment ago is refused before its upload"
        assert web.output().count(HASHED_LINE) == 5, "nothing is hashed for a locked-out client"
        assert send(port, INGEST_PASSWORD, source="127.0.0.2") == 200, "another booth is not affected"
    finally:
        web.stop()
    assert Job.objects.count() == 1
    refused = ProcessingLogEntry.objects.filter(failure_reason="rate_limited").count()
    assert refused == 3, "every refused attempt is still logged"


def test_guessing_from_many_clients_stops_new_clients_but_never_a_booth_that_was_working(
    service, worker, local_slot
):
    port = free_port()
    web = service.start_web_process(
        port, {"INGEST_PASSWORD_GLOBAL_FAILURES_ALLOWED": "3", "INGEST_PASSWORD_FAILURES_ALLOWED": "5"}
    )
    try:
        assert send(port, INGEST_PASSWORD, source="127.0.0.2") == 200, "a working booth"
        guessers = [send(port, secrets.token_hex(6), source=f"127.0.0.{n}") for n in (3, 4, 5)]
        assert guessers == [401, 401, 401]
        hashed = web.output().count(HASHED_LINE)

        assert send(port, secrets.token_hex(6), source="127.0.0.6") == 429, "a new guesser is stopped"
        assert send(port, INGEST_PASSWORD, source="127.0.0.7") == 429, "so is any new client meanwhile"
        assert web.output().count(HASHED_LINE) == hashed, "without hashing"
        assert send(port, INGEST_PASSWORD, source="127.0.0.2") == 200, "the working booth is never refused"
    finally:
        web.stop()
    assert Job.objects.count() == 2
