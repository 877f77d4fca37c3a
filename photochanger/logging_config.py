"""The project's logging set-up (settings.LOGGING_CONFIG).

Python warnings are routed into the ``py.warnings`` logger, so they reach the same handler as every
other line — in production one JSON object per line, never a raw ``file:line: UserWarning`` line that
breaks a log shipper's parser. Django itself no longer does this.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any


def configure(config: dict[str, Any]) -> None:
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
