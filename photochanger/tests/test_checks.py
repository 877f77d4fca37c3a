from django.core.checks import run_checks

from conftest import child_environment
from photochanger import checks


def test_bad_public_base_url_is_reported_as_e003(settings):
    settings.PUBLIC_BASE_URL = "booth.example.com"
    assert [m.id for m in checks.check_public_base_url(None)] == ["photochanger.E003"]


def test_invalid_encryption_key_is_reported_as_e004(settings):
    settings.FIELD_ENCRYPTION_KEY = "not-a-fernet-key"
    assert [m.id for m in checks.check_field_encryption_key(None)] == ["photochanger.E004"]


def test_development_secret_key_fails_the_deploy_check(settings):
    messages = run_checks(include_deployment_checks=True)
    assert "photochanger.E001" in {m.id for m in messages}


def test_sync_minimum_out_of_range_is_reported_as_e002(settings):
    settings.SYNC_RESPONSE_MIN_SECONDS = 0
    assert [m.id for m in checks.check_sync_window_bounds(None)] == ["photochanger.E002"]


def test_production_refuses_to_start_without_secret_key(tmp_path):
    import subprocess
    import sys

    env = child_environment(
        {"DEBUG": "false", "SECRET_KEY": "", "DATABASE_URL": "postgres://x@127.0.0.1:1/x"}
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='photochanger.settings'; django.setup()",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
