"""pytest plugin (``-p photochanger.pytest_plugin`` in pyproject's addopts): the test session's database.

With ``DATABASE_URL`` unset, the session starts (or reuses) the embedded PostgreSQL server under
``DATA_DIR`` and exports its URL before pytest-django loads the settings; pytest-django then creates the
test database on it. The session holds the server until it ends, then stops it unless another process
(``scripts/run`` in the same checkout, say) still holds it.
"""

from __future__ import annotations

import pytest

from photochanger.embedded_db import ensure_database_url, release_embedded_postgres


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # tryfirst: pytest-django reads the settings in its own implementation of this hook.
    options = early_config.known_args_namespace
    if getattr(options, "help", False) or getattr(options, "version", False):
        return
    ensure_database_url()


def pytest_unconfigure(config: pytest.Config) -> None:
    # After every session fixture's teardown, so the test database has already been dropped.
    release_embedded_postgres()
