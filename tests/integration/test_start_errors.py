"""Issue 16, items 4 and 8: expected errors at start are one readable line and exit 1, never
a traceback: a URL of no supported database, an unreachable database, PostgreSQL without
the postgres extra; and SQLite needs no part of that extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from provisor.cli.common import fail
from tests.conftest import free_port

# Runs provisor with some modules made unimportable (as when an extra is not installed).
WITHOUT = (
    "import runpy, sys\n"
    "for name in sys.argv.pop(1).split(','):\n"
    "    sys.modules[name] = None\n"
    "sys.argv[0] = 'provisor'\n"
    "runpy.run_module('provisor', run_name='__main__')\n"
)


def upgrade(
    tmp_path: Path, *url: str, without: str = "", command: tuple[str, ...] = ("db", "upgrade")
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env["COLUMNS"] = "60"  # a narrow terminal: the message stays on one line all the same
    prefix = ["-c", WITHOUT, without] if without else ["-m", "provisor"]
    options = ["--database-url", *url] if url else []
    return subprocess.run(
        [sys.executable, *prefix, *command, "--data-dir", str(tmp_path), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def one_line_error(completed: subprocess.CompletedProcess[str]) -> str:
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), completed.stderr
    return lines[0].removeprefix("Error: ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mysql://app:hunter2@db.example/provisor",
            "provisor keeps its data in SQLite or PostgreSQL, ",
        ),
        ("not a url", "The database URL is not a URL: "),
    ],
)
def test_a_url_of_no_supported_database_says_what_to_use(
    tmp_path: Path, url: str, expected: str
) -> None:
    message = one_line_error(upgrade(tmp_path, url))
    assert message.startswith(expected)
    assert "use postgresql://user:password@host:port/database" in message
    assert "hunter2" not in message  # the URL's password is not repeated


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://provisor@127.0.0.1:{free_port()}/provisor"
    message = one_line_error(upgrade(tmp_path, url))
    assert message.startswith("Database unavailable: ") and "refused" in message


@pytest.mark.parametrize("missing", ["psycopg", "procrastinate"])
def test_postgresql_without_the_extra_prints_the_command_that_installs_it(
    tmp_path: Path, missing: str
) -> None:
    url = "postgresql://provisor@127.0.0.1:5432/provisor"
    message = one_line_error(upgrade(tmp_path, url, without=missing))
    assert message.startswith("PostgreSQL needs provisor's postgres extra, which is not installed")
    assert message.endswith("Install it with: pip install 'provisor[postgres]'")


def test_sqlite_needs_nothing_of_the_postgres_extra(tmp_path: Path) -> None:
    extra = "psycopg,psycopg_pool,procrastinate"
    created = upgrade(tmp_path / "data", without=extra, command=("init",))
    assert created.returncode == 0, created.stderr
    completed = upgrade(tmp_path / "data", without=extra)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("Database at revision ")


def test_a_message_with_brackets_is_printed_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as stopped:
        fail("Install it with: pip install 'provisor[ldap]' [then] restart")
    assert stopped.value.exit_code == 1
    printed = capsys.readouterr().err
    assert printed == "Error: Install it with: pip install 'provisor[ldap]' [then] restart\n"
