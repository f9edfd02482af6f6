"""The ``--help`` of every command: flags show no type placeholder, every option says what it
is for."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from provisor.cli import app


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``group`` (typer's own click objects)."""
    yield path, group
    if hasattr(group, "commands"):
        for name, command in group.commands.items():
            yield from _commands(command, (*path, name))


def test_every_help_is_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    root = typer.main.get_command(app)  # built once: typer's runner rebuilds it per call
    checked = 0
    for path, command in _commands(root):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            root.main([*path, "--help"], prog_name="provisor", standalone_mode=False)
        text = output.getvalue()
        assert "Usage: provisor" in text, path
        assert "<bool>" not in text, path
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, (path, param.name)
        checked += 1
    assert checked > 40
