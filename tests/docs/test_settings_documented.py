"""The README documents every setting and every option of ``provisor serve``."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.core
import typer.main

from provisor.cli import app
from provisor.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _serve_options() -> list[typer.core.TyperOption]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    params = group.commands["serve"].params
    return [p for p in params if isinstance(p, typer.core.TyperOption) and "--help" not in p.opts]


SERVE_OPTIONS = _serve_options()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_setting_in_readme(field: str) -> None:
    variable = f"PROVISOR_{field.upper()}"
    assert f"`{variable}`" in README, f"README.md does not document {variable}"


@pytest.mark.parametrize("option", SERVE_OPTIONS, ids=lambda option: option.opts[0])
def test_serve_option_in_readme(option: typer.core.TyperOption) -> None:
    names = [*option.opts, *option.secondary_opts]  # a flag: either of --x / --no-x
    assert any(name in README for name in names), f"README.md lacks provisor serve {names[0]}"
    envvars = [option.envvar] if isinstance(option.envvar, str) else option.envvar or []
    for variable in envvars:
        assert f"`{variable}`" in README, f"README.md does not document {variable}"
