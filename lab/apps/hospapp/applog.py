"""Application logging: plain text lines with ISO-8601 timestamps, to the configured log file.

Line format (one event per line)::

    2026-11-25T18:01:02.345+00:00 INFO ih@ih1 req=42 POST /api/payments 201 8.1ms client=127.0.0.1 ...

WatchedFileHandler reopens the file after logrotate moves it, so no copytruncate is needed.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from datetime import datetime, timezone

LOGGER_NAME = "hospapp"


class IsoFormatter(logging.Formatter):
    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging API
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")


def setup_logging(service: str, node: str, log_file: str | None, level: str) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(level)
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handler: logging.Handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(IsoFormatter(f"%(asctime)s %(levelname)s {service}@{node} %(message)s"))
    logger.addHandler(handler)
    return logger
