"""A deployment as Docs/runbooks.md describes it: ``manage.py check --deploy`` has nothing to report, the
answers carry the security headers (HSTS behind the TLS proxy, nosniff, a referrer policy, no framing of
the admin), and public ids cannot be guessed. (Nothing under ``/public/`` lists anything:
``test_booth_paths.py``.)"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from conftest import BASE_DIR, INGEST_PASSWORD, child_environment, free_port
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot

RUNBOOK = BASE_DIR / "Docs" / "runbooks.md"
SECRET_KEY = "deployment-test-secret-key-5f1c9e2a7b3d8f0e4a6c1b9d2e7f3a5c8b0d4e6f"


def runbook_environment(data_dir: Path) -> dict[str, str]:
    """The production environment file of the runbook's step 3, its placeholders filled in."""
    text = RUNBOOK.read_text()
    block = re.search(r"3\. Environment.*?```\n(.*?)```", text, re.DOTALL)
    assert block, "the runbook shows the production environment in a code block"
    values = {}
    for line in block.group(1).splitlines():
        name, _, value = line.strip().partition("=")
        values[name] = value
    assert values["DEBUG"] == "false" and values["BEHIND_TLS_PROXY"] == "true"
    values["SECRET_KEY"] = SECRET_KEY
    values["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    values["DATABASE_URL"] = values["DATABASE_URL"].replace("<password>", "secret")
    values["DATA_DIR"] = str(data_dir)  # the runbook's /var/lib/photochanger is not ours to write
    assert not [value for value in values.values() if "<" in value], "every placeholder filled in"
    return values


def test_the_deploy_check_reports_nothing_with_the_runbooks_production_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=BASE_DIR,
        env=child_environment(runbook_environment(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.fixture
def production_web(service, tmp_path):
    """A web process with the runbook's production settings, reached as the proxy would reach it."""
    environment = runbook_environment(tmp_path)
    for name in ("DATABASE_URL", "DATA_DIR"):
        environment.pop(name)  # the test database and media of the service
    port = free_port()
    web = service.start_web_process(port, environment)
    yield f"http://127.0.0.1:{port}", port
    web.stop()


PROXY_HTTPS = {"Host": "booth.example.com", "X-Forwarded-Proto": "https"}


@pytest.mark.django_db(transaction=True)
def test_admin_pages_behind_the_tls_proxy_carry_hsts_nosniff_a_referrer_policy_and_deny_framing(
    production_web, studio
):
    base_url, _port = production_web
    response = httpx.get(f"{base_url}/admin/login/", headers=PROXY_HTTPS)

    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    assert "secure" in response.headers["set-cookie"].lower(), "the CSRF cookie only travels over HTTPS"


@pytest.mark.django_db(transaction=True)
def test_plain_http_through_the_proxy_is_redirected_to_https_and_gets_no_hsts(production_web, studio):
    base_url, _port = production_web
    response = httpx.get(
        f"{base_url}/admin/login/", headers={"Host": "booth.example.com", "X-Forwarded-Proto": "http"}
    )

    assert response.status_code == 301
    assert response.headers["location"] == "https://booth.example.com/admin/login/"
    assert "strict-transport-security" not in response.headers


@pytest.mark.django_db(transaction=True)
def test_probes_and_metrics_reached_directly_are_not_redirected(production_web, studio):
    base_url, _port = production_web
    for path in ("/healthz", "/readyz", "/metrics"):
        response = httpx.get(f"{base_url}{path}", headers={"Host": "booth.example.com"})
        assert response.status_code in (200, 503), (path, response.status_code)


@pytest.mark.django_db(transaction=True)
def test_booth_answers_behind_the_tls_proxy_carry_hsts_nosniff_and_no_referrer(production_web, studio):
    base_url, _port = production_web
    response = httpx.get(f"{base_url}/public/results/{uuid.uuid4()}", headers=PROXY_HTTPS)

    assert response.status_code == 404
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    plain = httpx.get(f"{base_url}/public/results/{uuid.uuid4()}", headers={"Host": "booth.example.com"})
    assert "strict-transport-security" not in plain.headers, "HSTS only on HTTPS answers"


@pytest.mark.django_db(transaction=True)
def test_result_ids_are_random_uuid4_and_neighbouring_or_sequential_ids_get_404(service, worker, studio):
    Slot.objects.filter(id="slot-001").update(
        provider="local", operation="grayscale", settings={}, is_active=True
    )
    photo = make_jpeg()
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    first, second = (booth_post(service.port, "/ingest/slot-001", body) for _ in range(2))
    ids = [uuid.UUID(answer.headers["x-job-id"]) for answer in (first, second)]

    assert ids[0] != ids[1]
    assert [job_id.version for job_id in ids] == [4, 4], "122 random bits each"
    assert httpx.get(f"{service.base_url}/public/results/{ids[0]}").status_code == 200
    neighbour = uuid.UUID(int=ids[0].int + 1)
    guesses = [str(neighbour), "1", "2", "00000000-0000-0000-0000-000000000001", str(ids[0])[:-1]]
    for guess in guesses:
        response = httpx.get(f"{service.base_url}/public/results/{guess}")
        assert response.status_code == 404, guess
        assert response.json()["failure_reason"] == "not_found"


def test_temporary_media_links_have_192_random_bits():
    from media.models import new_media_id

    ids = {new_media_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", media_id) for media_id in ids), "24 random bytes, base64url"
