"""Unexpected job failures: the details go to the server log, the job shows a public message."""

from __future__ import annotations

import uuid

import structlog

log = structlog.get_logger("provisor.jobs")
_REFERENCE = "provisor_reference"  # set on an exception once it is logged


def unexpected(exc: BaseException, job_id: str) -> str:
    """Log an unexpected error of a job (once per exception, with its traceback) and the
    message the job shows instead: no exception text, paths or back-end answers in it."""
    reference = getattr(exc, _REFERENCE, None)
    if reference is None:
        reference = uuid.uuid4().hex[:12]
        log.error("job failed unexpectedly", job=job_id, reference=reference, exc_info=exc)
        setattr(exc, _REFERENCE, reference)
    return f"an unexpected error (reference {reference}); the server log has the details"
