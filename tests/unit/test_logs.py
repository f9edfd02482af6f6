"""Logs are JSON lines, provisor's and the libraries', and never carry local variables
(credentials, personal data)."""

from __future__ import annotations

import json
import logging
import warnings

import pytest
import structlog

from provisor import logs


def test_exceptions_are_logged_without_locals(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info")
    log = structlog.get_logger("test")
    authorization = "Basic c2VjcmV0LWNyZWRlbnRpYWw="  # noqa: F841 (a local the log must not show)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed", path="/scim/Users")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["event"] == "failed" and event["level"] == "error"
    assert "RuntimeError: boom" in event["exception"]
    assert "c2VjcmV0" not in line
    log.debug("hidden")
    assert capsys.readouterr().err == ""


def test_library_lines_and_warnings_are_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """The standard library's records (procrastinate's, alembic's...) and warnings go through the
    same renderer, with the request id bound at the time; httpx's request lines (URLs with
    their query) and alembic's chatter are not written."""
    logs.configure("info")
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        logging.getLogger("procrastinate.worker").info("Starting worker %d", 42)
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("procrastinate.worker").exception("Job failed")
        logging.getLogger("httpx").info("HTTP Request: GET https://x.test/?token=s3cr3t")
        logging.getLogger("alembic.runtime.migration").info("Context impl %s.", "SQLiteImpl")
        logging.getLogger("alembic.runtime.migration").info("Running upgrade 0001 -> 0002")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            logging.captureWarnings(False)  # pytest's catch_warnings replaced what configure
            logging.captureWarnings(True)  # installed: install it again
            warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    finally:
        structlog.contextvars.clear_contextvars()
        logging.captureWarnings(False)
    text = capsys.readouterr().err
    events = [json.loads(line) for line in text.splitlines()]
    assert [(e["logger"], e["level"]) for e in events] == [
        ("procrastinate.worker", "info"),
        ("procrastinate.worker", "error"),
        ("alembic.runtime.migration", "info"),
        ("py.warnings", "warning"),
    ]
    assert events[0]["event"] == "Starting worker 42"
    assert "ValueError: bad" in events[1]["exception"]
    assert events[2]["event"] == "Running upgrade 0001 -> 0002"
    assert "deprecated thing" in events[3]["event"]
    assert {e["request_id"] for e in events} == {"r-1"}
    assert "s3cr3t" not in text


def test_configure_again_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info")
    logs.configure("warning")
    logging.getLogger("procrastinate").info("hidden at warning")
    logging.getLogger("procrastinate").warning("once")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["once"]
