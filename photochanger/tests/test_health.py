"""/healthz while the process serves; /readyz names what is missing: database, migrations, worker."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from conftest import free_port
from jobs.heartbeats import worker_heartbeat_beat, worker_heartbeat_stop

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_ok_without_asking_anything(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_unavailable_without_a_worker_and_ready_with_one(client, studio):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]
    worker_heartbeat_beat(name="host:1:abc", started_at=timezone.now(), jobs_in_flight=0)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"
    worker_heartbeat_stop(name="host:1:abc")
    assert client.get("/readyz").status_code == 503


def test_a_worker_silent_for_more_than_30_seconds_does_not_count(client, studio):
    worker_heartbeat_beat(name="host:2:old", started_at=timezone.now(), jobs_in_flight=0)
    import time_machine

    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert client.get("/readyz").json()["failing"] == ["worker"]


def test_a_running_worker_makes_the_real_service_ready(service, worker):
    import time

    deadline = time.monotonic() + 15  # the worker's first heartbeat comes with its first housekeeping
    response = httpx.get(f"{service.base_url}/readyz", timeout=10)
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        response = httpx.get(f"{service.base_url}/readyz", timeout=10)
    assert response.status_code == 200, response.text


def test_readyz_names_the_database_when_it_is_down(service):
    port = free_port()
    web = service.start_web_process(
        port, {"DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing", "DATABASE_POOL_TIMEOUT": "1"}
    )
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    finally:
        web.stop()
    assert response.status_code == 503
    assert response.json()["failing"] == ["database", "migrations", "worker"]
    assert health.status_code == 200, "the process itself still serves"
