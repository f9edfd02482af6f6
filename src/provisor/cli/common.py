"""What the ``provisor`` commands share: consoles, common options, settings, services."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from provisor.context import Context
from provisor.errors import ProvisorError
from provisor.settings import Settings

if TYPE_CHECKING:  # the server stack is imported by the commands that use it
    from provisor.runtime import Services

out = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="PROVISOR_DATA_DIR",
        help="Data folder (SQLite database, key file). Default: ./provisor-data",
    ),
]
DatabaseURL = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="PROVISOR_DATABASE_URL",
        help="Database URL, e.g. postgresql://user@host/db. Default: SQLite.",
    ),
]
AsJSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def settings_from(data_dir: Path | None, database_url: str | None, **extra: Any) -> Settings:
    values: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    try:
        return Settings(**values)
    except ValidationError as exc:
        fail("Invalid settings: " + "; ".join(_setting_problem(e) for e in exc.errors()) + ".")


def _setting_problem(error: Any) -> str:
    """``PROVISOR_NAME should be ..., not ...`` (a key's or secret's value is not shown)."""
    name = "PROVISOR_" + "_".join(str(part) for part in error["loc"]).upper()
    message = str(error["msg"])
    if message.startswith("Input should be "):
        wanted = message.removeprefix("Input should be ").split(", unable to")[0]
        secret = "KEY" in name or "SECRET" in name
        return f"{name} should be {wanted}" + ("" if secret else f", not {error.get('input')!r}")
    return f"{name}: {message.removeprefix('Value error, ')}"


def print_json(data: Any) -> None:
    """JSON on standard output, for scripts (``--json``)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def operator_context() -> Context:
    """The context of the CLI's service calls: the local operator (who holds the data folder
    and its master key) acting as an administrator, named ``cli:<user>``."""
    try:
        name = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        name = "cli"
    return Context.administrator(name)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def open_services(settings: Settings) -> Iterator[Services]:
    """Services on an up-to-date database; ProvisorErrors become readable messages. The
    services' warnings (and, at log level debug, everything) go to standard error:
    standard output is the command's."""
    from provisor import logs
    from provisor.runtime import Services
    from provisor.storage import migrate

    logs.configure("debug" if settings.log_level == "debug" else "warning")
    try:
        services = Services.open(settings)
        try:
            migrate.upgrade(services.db)
            yield services
        finally:
            services.close()
    except ProvisorError as exc:
        fail(exc.message)
