"""``provisor clients`` against a live server, and the local bootstrap commands (``init``,
``db upgrade``, ``clients create --local``) that alone open a data folder."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import httpx
from typer.testing import CliRunner

from provisor.cli import app
from tests.conftest import CLI


def refused(completed: subprocess.CompletedProcess[str], *words: str, code: int = 1) -> str:
    """The error text of a command that failed as a person expects, on one line (the console
    wraps it at spaces): no traceback."""
    assert completed.returncode == code, completed.stdout + completed.stderr
    text = " ".join(completed.stderr.split())
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    return text


def test_clients_commands(cli: CLI) -> None:
    created = json.loads(
        cli.invoke(
            "clients", "create", "hr-sync", "-p", "manage_users", "-p", "manage_groups", "--json"
        ).stdout
    )
    client_id, secret = created["clientId"], created["clientSecret"]
    assert len(client_id) == 36 and len(secret) >= 40
    with httpx.Client(base_url=cli.server.url, auth=(client_id, secret)) as hr:
        assert hr.get("/scim/Users").status_code == 200

    listed = json.loads(cli.invoke("clients", "list", "--json").stdout)
    assert [c["name"] for c in listed["items"]] == ["initial-admin", "hr-sync"]
    assert listed["items"][1]["permissions"] == ["manage_groups", "manage_users"]
    assert secret not in json.dumps(listed) and "clientSecret" not in json.dumps(listed)
    table = cli.invoke("clients", "list").stdout
    assert client_id in table and "hr-sync" in table, "whole ids in the table"
    shown = cli.invoke("clients", "show", "hr-sync").stdout
    assert client_id in shown and "manage_groups manage_users" in shown

    kept = json.loads(
        cli.invoke("clients", "rotate-secret", "hr-sync", "--keep-previous", "--json").stdout
    )
    assert kept["clientSecret"] != secret and len(kept["secrets"]) == 2
    refused(cli.invoke("clients", "rotate-secret", "hr-sync", check=False), "--yes")
    replaced = cli.invoke("clients", "rotate-secret", "hr-sync", "--yes").stdout
    assert "client_secret:" in replaced
    assert (
        len(json.loads(cli.invoke("clients", "show", client_id, "--json").stdout)["secrets"]) == 1
    )

    own = cli.invoke("clients", "rotate-secret", "initial-admin", "--keep-previous")
    assert "provisor login again" in own.stderr, "the secret the command logged in with"
    refused(cli.invoke("clients", "delete", "hr-sync", check=False), "--yes")
    assert "Deleted client hr-sync" in cli.invoke("clients", "delete", "hr-sync", "-y").stdout
    refused(cli.invoke("clients", "show", "hr-sync", check=False), "No client")


def test_clients_errors_are_readable(cli: CLI) -> None:
    cli.invoke("clients", "create", "dup", "-p", "admin")
    refused(cli.invoke("clients", "create", "dup", "-p", "admin", check=False), "already exists")
    unknown = cli.invoke("clients", "create", "x", "-p", "superuser", check=False)
    refused(unknown, "superuser", "tenant_admin_api", code=2)
    refused(cli.invoke("clients", "create", "y", check=False), "--permission", code=2)
    refused(cli.invoke("clients", "delete", "ghost", "--yes", check=False), "No client")
    refused(cli.invoke("clients", "rotate-secret", "ghost", "-y", check=False), "No client")
    refused(
        cli.invoke("clients", "create", "z", "-p", "admin", "--data-dir", "d", check=False),
        "--local",
    )


def test_the_last_admin_cannot_delete_itself(cli: CLI) -> None:
    cli.invoke("clients", "delete", "dup", "-y", check=False)
    last = cli.invoke("clients", "delete", "initial-admin", "--yes", check=False)
    refused(last, "last client with the admin permission")


def test_a_command_in_a_subprocess(cli: CLI) -> None:
    created = json.loads(
        cli.run("clients", "create", "feed", "-p", "realtime_api", "--json").stdout
    )
    assert "feed" in cli.run("clients", "list").stdout
    offline = cli.env | {"PROVISOR_SERVER": "http://127.0.0.1:9"}
    unreachable = subprocess.run(
        ["python3", "-m", "provisor", "clients", "show", created["clientId"]],
        capture_output=True,
        text=True,
        env=offline,
        cwd=cli.cwd,
        timeout=120,
        check=False,
    )
    refused(unreachable, "Cannot reach the provisor server at http://127.0.0.1:9")


# -- local: init, db upgrade, clients create --local ------------------------------------------


def local(*args: str) -> subprocess.CompletedProcess[str]:
    """A local command in this process, with no PROVISOR_* setting of the shell."""
    result = CliRunner().invoke(app, list(args), env={"PROVISOR_DATA_DIR": None})
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_init_then_bootstrap_credentials(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = local("init", "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout and "initial-admin.json" in first.stdout
    admin = json.loads((data / "initial-admin.json").read_text())
    assert stat.S_IMODE((data / "initial-admin.json").stat().st_mode) == 0o600
    again = local("init", "--data-dir", str(data))
    assert again.returncode == 0 and "exists" in again.stdout
    assert "no initial admin created" in again.stdout
    assert json.loads((data / "initial-admin.json").read_text()) == admin, "not rewritten"

    made = local(
        "clients", "create", "ops", "-p", "admin", "--local", "--data-dir", str(data), "--json"
    )
    assert made.returncode == 0, made.stderr
    ops = json.loads(made.stdout)
    assert ops["name"] == "ops" and ops["clientSecret"] and ops["permissions"] == ["admin"]
    assert "revision" in local("db", "upgrade", "--data-dir", str(data)).stdout


def test_only_serve_and_init_make_a_data_folder(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    for args in (
        ("db", "upgrade"),
        ("clients", "create", "ops", "-p", "admin", "--local"),
        ("worker",),
    ):
        text = refused(local(*args, "--data-dir", str(missing)), "--data-dir", "PROVISOR_DATA_DIR")
        assert str(missing) in text
    assert not missing.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    refused(local("db", "upgrade", "--data-dir", str(empty)), "no provisor data folder")
    assert list(empty.iterdir()) == [], "no key, no database made"


def test_a_lost_key_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert local("init", "--data-dir", str(data)).returncode == 0
    (data / "secret.key").unlink()
    for args in (
        ("init",),
        ("db", "upgrade"),
        ("clients", "create", "x", "-p", "admin", "--local"),
    ):
        refused(local(*args, "--data-dir", str(data)), "master key", "restore")
    assert not (data / "secret.key").exists()
