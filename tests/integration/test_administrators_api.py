"""``/api/v1/administrators`` and ``provisor admins``: the console's people managed over the
admin API, and ``admins create|reset-password --local`` for a locked-out installation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisor.admins.model import Role
from provisor.cli import app
from provisor.context import INSTALLATION, Context
from provisor.errors import InputError
from tests.conftest import CLI

API = "/api/v1/administrators"
CTX = Context.system("test")


def refused(completed: subprocess.CompletedProcess[str], *words: str) -> None:
    assert completed.returncode == 1, completed.stdout + completed.stderr
    text = " ".join(completed.stderr.split())
    for word in words:
        assert word in text, text
    assert "Traceback" not in text


def test_the_api_manages_administrators(cli: CLI) -> None:
    with cli.server.client() as http:
        made = http.post(API, json={"name": "ada", "role": "administrator"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["name"] == "ada" and len(body["password"]) >= 12
        assert made.headers["location"].endswith(f"{API}/ada")
        given = http.post(API, json={"name": "vera", "role": "viewer", "password": "x" * 12})
        assert given.status_code == 201 and "password" not in given.json()
        assert cli.server.services.administrators.authenticate("default", "ada", body["password"])

        for i in range(3):
            http.post(API, json={"name": f"p{i}", "role": "viewer"})
        first = http.get(API, params={"count": 2}).json()
        assert [a["name"] for a in first["items"]] == ["ada", "admin"]
        second = http.get(API, params={"count": 2, "after": first["next"]}).json()
        assert [a["name"] for a in second["items"]] == ["p0", "p1"]
        assert http.get(API, params={"search": "ER"}).json()["items"][0]["name"] == "vera"
        assert http.get(API, params={"count": 0}).status_code == 400

        assert http.patch(f"{API}/vera", json={"role": "administrator"}).json()["role"] == (
            "administrator"
        )
        reset = http.post(f"{API}/vera/password").json()
        assert len(reset["password"]) >= 12
        assert (
            "password" not in http.post(f"{API}/vera/password", json={"password": "y" * 12}).json()
        )
        assert http.post(f"{API}/vera/password", json={"password": "short"}).status_code == 400
        assert http.post(f"{API}/vera/second-factor/reset").json()["totpEnabled"] is False
        assert http.post(f"{API}/vera/sessions/end").json() == {"ended": 0}
        assert http.delete(f"{API}/vera").status_code == 204
        missing = http.get(f"{API}/vera")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

        operator = http.post(API, json={"name": "op", "role": "operator"})
        assert operator.status_code == 400 and "installation" in operator.json()["detail"]
        assert http.post(API, json={"name": "ada", "role": "viewer"}).status_code == 409
        assert http.post(API, json={"name": "x", "role": "king"}).status_code == 400
        http.delete(f"{API}/ada")
        last = http.delete(f"{API}/admin")
        assert last.status_code == 400 and "last administrator" in last.json()["detail"]


def test_viewers_look_and_others_are_refused(cli: CLI) -> None:
    viewer = cli.server.new_client("view")
    nobody = cli.server.new_client("manage_users")
    with cli.server.client(auth=viewer) as http:
        assert http.get(API).status_code == 200
        assert http.get(f"{API}/admin").json()["role"] == "administrator"
        assert http.post(API, json={"name": "eve", "role": "administrator"}).status_code == 403
        assert http.delete(f"{API}/admin").status_code == 403
    with cli.server.client(auth=nobody) as http:
        assert http.get(API).status_code == 403
    with cli.server.client(auth=None) as http:
        assert http.get(API).status_code == 401


def test_the_cli_manages_administrators(cli: CLI) -> None:
    made = json.loads(cli.invoke("admins", "create", "ada", "--json").stdout)
    assert made["role"] == "administrator" and made["password"]
    password = cli.cwd / "pw"
    password.write_text("a long password\n")
    text = cli.invoke("admins", "create", "vera", "--role", "viewer", "--password-file", "pw")
    assert "vera (viewer, local)" in text.stdout and "password" not in text.stdout
    assert cli.server.services.administrators.authenticate("default", "vera", "a long password")
    listed = cli.invoke("admins", "list").stdout
    assert "ada" in listed and "vera" in listed and "viewer" in listed
    assert json.loads(cli.invoke("admins", "list", "--json", "--search", "ver").stdout)["items"][0][
        "name"
    ] == ("vera")
    assert "administrator" in cli.invoke("admins", "set-role", "vera", "administrator").stdout
    assert "vera (administrator" in cli.invoke("admins", "show", "vera").stdout
    reset = cli.invoke("admins", "reset-password", "vera").stdout
    assert "New password of vera: " in reset
    assert "removed" in cli.invoke("admins", "reset-second-factor", "vera").stdout
    assert "Ended 0 sessions of vera" in cli.invoke("admins", "end-sessions", "vera").stdout
    assert "Deleted" in cli.invoke("admins", "delete", "vera", "--yes").stdout
    refused(cli.invoke("admins", "show", "vera", check=False), "No administrator named")
    refused(cli.invoke("admins", "delete", "ada", check=False), "--yes")
    refused(
        cli.invoke("admins", "create", "x", "--password-file", "pw", "--ask-password", check=False),
        "not both",
    )
    refused(cli.invoke("admins", "create", "x", "--operator", check=False), "--local")
    refused(cli.invoke("admins", "create", "x", "--data-dir", "d", check=False), "--local")
    cli.invoke("admins", "delete", "ada", "--yes")
    refused(cli.invoke("admins", "delete", "admin", "--yes", check=False), "last administrator")


def test_a_command_in_a_subprocess(cli: CLI) -> None:
    assert "admin" in cli.run("admins", "list").stdout


def local(*args: str) -> subprocess.CompletedProcess[str]:
    result = CliRunner().invoke(app, list(args), env={"PROVISOR_DATA_DIR": None})
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_local_commands_recover_a_locked_out_installation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert local("init", "--data-dir", str(data)).returncode == 0
    reset = local("admins", "reset-password", "admin", "--local", "--data-dir", str(data), "--json")
    assert reset.returncode == 0, reset.stderr
    password = json.loads(reset.stdout)["password"]
    made = local("admins", "create", "ops", "--local", "--data-dir", str(data), "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["role"] == "administrator"
    first = local("admins", "create", "root", "--local", "--operator", "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    assert "root (operator, local)" in first.stdout
    refused(
        local("admins", "create", "x", "--local", "--tenant", "nope", "--data-dir", str(data)),
        "No tenant 'nope'",
    )
    refused(
        local("admins", "reset-password", "ghost", "--local", "--data-dir", str(data)),
        "No administrator named",
    )

    from provisor.runtime import Services
    from provisor.settings import Settings

    services = Services.open(Settings(data_dir=data))
    try:
        assert services.administrators.authenticate("default", "admin", password)
        ctx = Context.system("test", tenant=INSTALLATION)
        assert services.administrators.show(ctx, "root").role is Role.OPERATOR
    finally:
        services.close()


def test_an_operator_role_belongs_to_the_installation_only(cli: CLI) -> None:
    admins = cli.server.services.administrators
    ctx = Context.system("test", tenant=INSTALLATION)
    admins.create(ctx, "root", Role.OPERATOR, "p" * 12)
    with pytest.raises(InputError, match="operators"):
        admins.create(ctx, "ada", Role.ADMINISTRATOR)
    with pytest.raises(InputError, match="last operator of this installation"):
        admins.delete(ctx, "root")
    with cli.server.client() as http:
        assert http.patch(f"{API}/admin", json={"role": "operator"}).status_code == 400
        assert http.get(f"{API}/root").status_code == 404  # another scope's
    refused(cli.invoke("admins", "set-role", "admin", "operator", check=False), "installation")
