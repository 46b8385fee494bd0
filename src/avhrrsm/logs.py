"""Logging set-up shared by every entry point: to the rule's log file and to stderr."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> None:
    """Send log records to stderr and, when given, to ``log_file`` (created with its folder)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: object) -> None:
    """An error that ends the job goes into the rule's log too, with its message first."""
    logging.getLogger("avhrrsm").error(
        "job failed: %s",
        error,
        exc_info=(kind, error, trace),  # type: ignore[arg-type]
    )


def progress(
    items: Iterable[T], total: int, label: str, logger: logging.Logger, every_percent: int = 25
) -> Iterator[T]:
    """Yield ``items`` and log '{label}: k/total (p%)' about every ``every_percent`` percent."""
    step = max(1, total * every_percent // 100)
    start = time.monotonic()
    for index, item in enumerate(items, start=1):
        yield item
        if index % step == 0 or index == total:
            elapsed = time.monotonic() - start
            logger.info(
                "%s: %d/%d (%d%%, %.1f s)", label, index, total, 100 * index // total, elapsed
            )
