"""Log output: one JSON object per line on stderr, with plain tracebacks.

provisor's own lines (structlog) and every other line of the process — uvicorn's, the
libraries' through the standard library's ``logging`` (alembic, procrastinate...), warnings —
go through the same renderer: the root logger's one handler formats its records with
structlog's ``ProcessorFormatter``. Lines written while a request is handled carry its
``request_id`` (bound by the web's request id middleware).

Tracebacks never show local variables: they could hold credentials or personal data.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

# Libraries whose INFO lines would say what they should not (httpx logs every request's URL,
# query string included, which may hold a secret or a person's name), or say nothing an
# operator needs (alembic's plugins, loaded by every process).
QUIET = ("httpx", "httpx2", "httpcore", "hpack", "alembic.runtime.plugins")
# alembic's lines on every check of the database's revision; its "Running upgrade" stay.
_CHATTER = ("Context impl ", "Will assume ")


def _not_chatter(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg.startswith(_CHATTER))


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


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler that configure installs (and replaces when called again)."""


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure(level: str = "info") -> None:
    """Log JSON lines at ``level`` and above, provisor's and every library's, on stderr."""
    threshold = logging.getLevelNamesMapping()[level.upper()]
    renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    structlog.configure(
        processors=[*_shared(), structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=_StandardError()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _Handler(_StandardError())
    handler.setFormatter(formatter)
    handler.addFilter(_not_chatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn: a line of logger py.warnings
