"""Logs never carry local variables (credentials, personal data)."""

from __future__ import annotations

import json

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
