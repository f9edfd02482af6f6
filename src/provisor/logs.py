"""Log output: one JSON object per line on stderr, with plain tracebacks.

Tracebacks never show local variables: they could hold credentials or personal data.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def _dumps(event: object, **_: object) -> str:
    return orjson.dumps(event, default=str).decode()


class _StandardError:
    """The process's standard error as it is when a line is written, not as it was when
    logging was configured (a stream replaced since, such as a test's captured one, may be
    closed)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_StandardError()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
