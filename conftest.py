"""Shared test fixtures: the real service (uvicorn + run_worker processes) against the test database.

Tests that drive the service use ``transactional_db`` so the server processes see committed rows.
Provider fakes are small local HTTP servers speaking each provider's wire format.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

BASE_DIR = Path(__file__).resolve().parent
INGEST_PASSWORD = "booth-password-1"  # noqa: S105
# The sync window the service tests run with (the 45 s floor is lowered for tests only).
TEST_SYNC_SECONDS = 4


# The only variables a child process (service, probe) inherits from the developer's environment: what
# the interpreter and the OS need. Everything PhotoChanger reads comes from the explicit test values, so
# an exported GEMINI_API_KEY, DEBUG, DATABASE_URL or PROVIDER_CONCURRENCY cannot change a test's result.
INHERITED_VARIABLES = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "VIRTUAL_ENV",
}
INHERITED_PREFIXES = ("LC_", "PYTHON")


def child_environment(values: dict[str, str]) -> dict[str, str]:
    """The environment for a child process: the inherited basics plus ``values``, nothing else."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name in INHERITED_VARIABLES or name.startswith(INHERITED_PREFIXES)
    }
    return {**inherited, "DJANGO_SETTINGS_MODULE": "photochanger.settings", **values}


def service_environment(
    *, database_url: str, media_root: Path, fake_gemini: Any, fake_openai: Any, fake_turbotext: Any
) -> dict[str, str]:
    """What the service's web and worker processes run with in tests."""
    return child_environment(
        {
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(media_root),
            "GEMINI_API_BASE": fake_gemini.base_url,
            "OPENAI_API_BASE": fake_openai.base_url,
            "TURBOTEXT_API_BASE": fake_turbotext.base_url,
            "PROVIDER_CONCURRENCY": "gemini=100,openai=100,turbotext=100",
            "SYNC_RESPONSE_MIN_SECONDS": "1",
            "WORKER_LEASE_SECONDS": "1.5",
            "WORKER_POLL_SECONDS": "0.5",
            "INGEST_PASSWORD_FAILURES_ALLOWED": "5",
            "PHOTOCHANGER_TESTING": "1",
            "LOG_LEVEL": "INFO",
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    host = db["HOST"]
    port = db["PORT"] or 5432
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    if str(host).startswith("/"):
        return f"postgresql://{user}{password}@/{db['NAME']}?host={host}&port={port}"
    return f"postgresql://{user}{password}@{host}:{port}/{db['NAME']}"


class ServiceProcess:
    """One child process of the service (web or worker) with its output captured to a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            command, env=env, cwd=BASE_DIR, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        self.signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        self._log.close()
        return code


class Service:
    """The service under test: environment, web server, and any number of workers."""

    def __init__(self, env: dict[str, str], log_dir: Path, media_root: Path) -> None:
        self.log_dir = log_dir
        self.media_root = media_root
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Providers that download by URL (Turbotext) reach our temporary links here.
        self.env = {**env, "PUBLIC_BASE_URL": self.base_url}
        self.web: ServiceProcess | None = None
        self.workers: list[ServiceProcess] = []

    def start_web(self) -> ServiceProcess:
        self.web = self.start_web_process(self.port, {})
        return self.web

    def start_web_process(self, port: int, env: dict[str, str]) -> ServiceProcess:
        """A uvicorn process on ``port`` with this service's environment plus ``env``."""
        command = [
            sys.executable, "-m", "uvicorn", "photochanger.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log",
        ]  # fmt: skip
        web = ServiceProcess(
            "web", command, {**self.env, "DATABASE_APPLICATION_NAME": "test-web", **env}, self.log_dir
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/public/results/none", timeout=1)
                return web
            except httpx.TransportError:
                if web.process.poll() is not None:
                    raise RuntimeError(f"web server exited:\n{web.output()}") from None
                time.sleep(0.1)
        raise RuntimeError(f"web server did not start:\n{web.output()}")

    def start_worker(
        self, *extra: str, wait_ready: bool = True, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        command = [sys.executable, str(BASE_DIR / "manage.py"), "run_worker", *extra]
        worker_env = {**self.env, "DATABASE_APPLICATION_NAME": "test-worker", **(env or {})}
        worker = ServiceProcess(f"worker{len(self.workers)}", command, worker_env, self.log_dir)
        self.workers.append(worker)
        if wait_ready:
            deadline = time.monotonic() + 60
            while "running with concurrency" not in worker.output():
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{worker.output()}")
                time.sleep(0.05)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


@pytest.fixture(scope="session")
def fake_gemini() -> Iterator[Any]:
    from providers.tests.fakes.gemini import FakeGemini

    fake = FakeGemini()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[Any]:
    from providers.tests.fakes.openai import FakeOpenAI

    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_turbotext() -> Iterator[Any]:
    from providers.tests.fakes.turbotext import FakeTurbotext

    fake = FakeTurbotext()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def service_media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from django.conf import settings

    root = tmp_path_factory.mktemp("media")
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture(scope="session")
def service(
    django_db_setup: None,
    django_db_blocker: Any,
    fake_gemini: Any,
    fake_openai: Any,
    fake_turbotext: Any,
    service_media_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    env = service_environment(
        database_url=database_url(),
        media_root=service_media_root,
        fake_gemini=fake_gemini,
        fake_openai=fake_openai,
        fake_turbotext=fake_turbotext,
    )
    running = Service(env, tmp_path_factory.mktemp("logs"), service_media_root)
    running.start_web()
    yield running
    running.stop_workers()
    if running.web is not None:
        running.web.stop()


# --- The media store: the filesystem, or S3 (a local moto server) -----------------------------------------

S3_TEST_BUCKET = "photochanger-test-media"
MEDIA_STORES = ("filesystem", "s3")


@pytest.fixture(scope="session")
def s3_environment() -> Iterator[dict[str, str]]:
    """A local S3 server (moto in server mode) with an empty bucket; the variables that point at it.

    The service's processes and this one reach it over HTTP with the real boto3 client.
    """
    from media.tests.local_s3 import local_s3_start

    server, values = local_s3_start(S3_TEST_BUCKET, "test-access-key", "test-secret-key")
    yield values
    server.stop()


@pytest.fixture(scope="session")
def s3_service(service: Service, s3_environment: dict[str, str]) -> Iterator[Service]:
    """The service again, with its own web process, keeping its media in the S3 bucket."""
    running = Service({**service.env, **s3_environment}, service.log_dir, service.media_root)
    running.start_web()
    yield running
    running.stop_workers()
    if running.web is not None:
        running.web.stop()


@pytest.fixture(params=MEDIA_STORES)
def media_store(request: pytest.FixtureRequest, settings: Any) -> str:
    """Each test twice: this process's media store is the filesystem (the service's MEDIA_ROOT), then S3."""
    from photochanger.storage_settings import media_storage_config

    store = str(request.param)
    if store == "s3":
        environment = request.getfixturevalue("s3_environment")
        settings.STORAGES = {**settings.STORAGES, "default": media_storage_config(environment)}
    else:
        # Through the settings fixture: Django's storage forgets the location it had cached.
        settings.MEDIA_ROOT = request.getfixturevalue("service_media_root")
    return store


@pytest.fixture
def media_service(request: pytest.FixtureRequest, media_store: str) -> Iterator[Service]:
    """The service whose web and worker processes use ``media_store``, as this process does; the
    workers a test starts are stopped after it."""
    chosen: Service = request.getfixturevalue("s3_service" if media_store == "s3" else "service")
    yield chosen
    chosen.stop_workers()


@pytest.fixture
def studio(
    transactional_db: None, settings: Any, fake_gemini: Any, fake_openai: Any, fake_turbotext: Any
) -> Any:
    """Static slots, the ingest password and a short sync window, as a fresh install would have them."""
    from providers.services import provider_key_set
    from slots import services

    settings.SYNC_RESPONSE_MIN_SECONDS = 1
    services.slots_ensure_static()
    services.studio_settings_update(
        change=services.StudioSettingsChange(sync_response_seconds=TEST_SYNC_SECONDS)
    )
    services.ingest_password_set(password=INGEST_PASSWORD)
    provider_key_set(provider="gemini", api_key="test-gemini-key")
    provider_key_set(provider="openai", api_key="sk-test-openai-key")
    provider_key_set(provider="turbotext", api_key="test-turbotext-key")
    for fake in (fake_gemini, fake_openai, fake_turbotext):
        fake.reset()
    return services.studio_settings_get()


@pytest.fixture
def worker(service: Service) -> Iterator[ServiceProcess]:
    process = service.start_worker()
    yield process
    service.stop_workers()


# --- Browser tests (Debian's Chromium driven by Playwright) -------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]  # fmt: skip
STAFF_PASSWORD = "staff-password-123"  # noqa: S105 — a test user's
SCREEN_SIZES = {"desktop": (1366, 768), "phone": (390, 844)}


class StaffBrowser:
    """A Chromium against a web process of its own, with a staff user who can log in.

    ``page(size, locale)`` opens a page (logged in unless ``log_in=False``); ``screenshot(page, name)``
    saves a full-page PNG under ``PHOTOCHANGER_SCREENSHOTS`` when set (e.g. Docs/screenshots).
    """

    def __init__(self, browser: Any, port: int) -> None:
        self.browser = browser
        self.port = port

    def page(
        self, size: str = "desktop", *, locale: str = "ru-RU", log_in: bool = True, **options: Any
    ) -> Any:
        width, height = SCREEN_SIZES[size]
        context = self.browser.new_context(
            base_url=f"http://127.0.0.1:{self.port}", locale=locale, viewport={"width": width, "height": height},
            **options,
        )  # fmt: skip
        page = context.new_page()
        if log_in:
            page.goto("/admin/login/")
            page.fill("#id_username", "staff")
            page.fill("#id_password", STAFF_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/")
        return page

    @staticmethod
    def screenshot(page: Any, name: str) -> Path | None:
        folder = os.environ.get("PHOTOCHANGER_SCREENSHOTS")
        if not folder:
            return None
        path = Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def staff_browser(service: Service, studio: Any) -> Iterator[StaffBrowser]:
    """Playwright's sync API runs an event loop in this thread: ORM calls between browser steps are
    plain blocking calls (DJANGO_ALLOW_ASYNC_UNSAFE). A fresh web process per test: the session's one
    caches content type ids, which the database flush between tests renumbers."""
    from django.contrib.auth import get_user_model
    from django.db import connections
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is installed by scripts/test")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    get_user_model().objects.create_superuser(username="staff", email="", password=STAFF_PASSWORD)
    port = free_port()
    web = service.start_web_process(port, {})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield StaffBrowser(browser, port)
        browser.close()
        connections.close_all()
    web.stop()
