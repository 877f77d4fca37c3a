"""The service processes under test run with the test's configuration, not the developer's shell's."""

import json
import subprocess
import sys
import textwrap

from conftest import BASE_DIR, service_environment

SETTINGS_SEEN_BY_A_CHILD = textwrap.dedent(
    """
    import json
    import django
    django.setup()
    from django.conf import settings
    print(json.dumps({
        "gemini_api_key": settings.GEMINI_API_KEY,
        "openai_api_key": settings.OPENAI_API_KEY,
        "debug": settings.DEBUG,
        "provider_concurrency": settings.PROVIDER_CONCURRENCY,
        "database_name": settings.DATABASES["default"]["NAME"],
        "pool_max_size": settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"],
    }))
    """
)


def test_keys_and_settings_exported_by_the_developer_do_not_reach_service_processes(
    monkeypatch, tmp_path, fake_gemini, fake_openai, fake_turbotext
):
    monkeypatch.setenv("GEMINI_API_KEY", "developer-gemini-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-developer-openai-key")
    monkeypatch.setenv("DEBUG", "false")
    monkeypatch.setenv("SECRET_KEY", "developer-secret-key-that-is-long-enough-0123456789")
    monkeypatch.setenv("PROVIDER_CONCURRENCY", "gemini=1")
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "1")
    env = service_environment(
        database_url="postgresql://postgres@/test_photochanger?host=/nowhere&port=5432",
        media_root=tmp_path,
        fake_gemini=fake_gemini,
        fake_openai=fake_openai,
        fake_turbotext=fake_turbotext,
    )

    # The same interpreter and settings module the service's web and worker processes start with.
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_SEEN_BY_A_CHILD],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {
        "gemini_api_key": "",
        "openai_api_key": "",
        "debug": True,
        "provider_concurrency": {"gemini": 100, "openai": 100, "turbotext": 100},
        "database_name": "test_photochanger",
        "pool_max_size": 16,
    }
