"""Fixtures for tests that run the queue in this process (services and Worker steps, no subprocesses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def worker_threads_closed() -> Iterator[None]:
    """Close the database connections of the worker's thread pools after the test (the worker's
    ``run()`` does it on exit; tests that drive its steps directly use this)."""
    yield
    from photochanger.db import db_pool_close

    db_pool_close()
