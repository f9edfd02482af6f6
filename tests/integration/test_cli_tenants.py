"""``provisor tenants`` against a live server, as its operator: log in with
initial-operator.json, create a tenant (its administrator's secret once), list, show,
update, disable, enable and delete it."""

from __future__ import annotations

import json
import subprocess

import httpx

from provisor.auth.clients import INITIAL_OPERATOR_FILE
from tests.conftest import CLI, cli_for


def refused(completed: subprocess.CompletedProcess[str], *words: str) -> str:
    """The error text of a command that failed as a person expects: no traceback."""
    assert completed.returncode == 1, completed.stdout + completed.stderr
    text = " ".join(completed.stderr.split())
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    return text


def operator_cli(cli: CLI) -> CLI:
    """The command as the installation's initial operator (from the environment)."""
    data = json.loads((cli.server.settings.data_dir / INITIAL_OPERATOR_FILE).read_text())
    return cli_for(cli.server, cli.cwd, (data["client_id"], data["client_secret"]))


def anonymous(cli: CLI) -> CLI:
    """The same command with no credentials in the environment: only profiles."""
    env = {
        k: v
        for k, v in cli.env.items()
        if k not in ("PROVISOR_SERVER", "PROVISOR_CLIENT_ID", "PROVISOR_CLIENT_SECRET")
    }
    return CLI(server=cli.server, cwd=cli.cwd, env=env)


def test_an_operator_logs_in_and_manages_tenants(cli: CLI) -> None:
    url = cli.server.url
    user = anonymous(cli)
    operator_file = cli.server.settings.data_dir / INITIAL_OPERATOR_FILE
    login = user.invoke(
        "login", url, "--credentials-file", str(operator_file), "--profile", "operator"
    )
    assert "initial-operator (operator)" in login.stdout
    me = json.loads(user.invoke("whoami", "--json", "--profile", "operator").stdout)
    assert me["tenant"] == "_installation" and me["permissions"] == ["operator"]
    op = ["--profile", "operator"]

    created = user.invoke(
        "tenants", "create", "acme", "--title", "ACME", "-q", "sourceSystems=2", "--json", *op
    )
    acme = json.loads(created.stdout)
    assert acme["quotas"] == {"sourceSystems": 2} and acme["urls"]["path"] == f"{url}/t/acme"
    (cli.cwd / "acme.json").write_text(created.stdout)
    # the tenant's administrator logs in at the tenant's URL with what create printed
    user.invoke("login", f"{url}/t/acme", "--credentials-file", "acme.json", "--profile", "acme")
    acme_admin = json.loads(user.invoke("whoami", "--json", "--profile", "acme").stdout)
    assert acme_admin["tenant"] == "acme" and acme_admin["permissions"] == ["admin"]
    assert acme_admin["clientId"] == acme["administrator"]["client_id"]
    # a tenant's administrator manages no tenant
    refused(user.invoke("tenants", "list", "--profile", "acme", check=False), "operator")

    human = user.invoke("tenants", "create", "beta", *op).stdout
    assert "Created tenant beta." in human and f"URL:           {url}/t/beta" in human
    secret = next(line for line in human.splitlines() if line.startswith("client_secret:"))
    client_id = next(line for line in human.splitlines() if line.startswith("client_id:"))
    client_id = client_id.split()[-1]
    assert f"provisor login {url}/t/beta --client-id {client_id}" in human
    with httpx.Client(base_url=f"{url}/t/beta", auth=(client_id, secret.split()[-1])) as beta:
        assert beta.get("/scim/Users").status_code == 200

    listed = json.loads(user.invoke("tenants", "list", "--json", *op).stdout)
    assert [t["name"] for t in listed["items"]] == ["acme", "beta", "default"]
    table = user.invoke("tenants", "list", *op).stdout
    assert "sourceSystems=2" in table and "ACME" in table
    shown = user.invoke("tenants", "show", "acme", *op).stdout
    assert f"{url}/t/acme" in shown and "1 technical user" in shown
    assert acme["administrator"]["client_secret"] not in shown

    changed = user.invoke(
        "tenants", "update", "acme", "-q", "directoryEntities=5", "-q", "sourceSystems=default", *op
    )
    assert "quotas directoryEntities=5" in changed.stdout
    assert "Disabled tenant acme." in user.invoke("tenants", "disable", "acme", *op).stdout
    assert httpx.get(f"{url}/t/acme/scim/Users").status_code == 404
    assert "Enabled tenant acme." in user.invoke("tenants", "enable", "acme", *op).stdout

    # delete asks first, naming what goes; without a terminal it needs --yes
    refused(user.invoke("tenants", "delete", "acme", *op, check=False), "Not confirmed", "--yes")
    gone = json.loads(user.invoke("tenants", "delete", "acme", "--yes", "--json", *op).stdout)
    assert gone["name"] == "acme" and gone["deleted"]["clients"] == 1
    refused(user.invoke("tenants", "show", "acme", *op, check=False), "No tenant 'acme'")
    refused(user.invoke("tenants", "delete", "default", "--yes", *op, check=False), "default")
    refused(user.invoke("whoami", "--profile", "acme", check=False), "No tenant")


def test_bad_input_is_one_readable_line(cli: CLI) -> None:
    op = operator_cli(cli)
    refused(op.invoke("tenants", "create", "Acme", check=False), "not a tenant name")
    refused(op.invoke("tenants", "create", "x", "-q", "users=3", check=False), "NAME=N")
    refused(op.invoke("tenants", "create", "x", "-q", "sourceSystems=-1", check=False), "whole")
    refused(op.invoke("tenants", "create", "x", "-q", "sourceSystems=default", check=False))
    refused(op.invoke("tenants", "update", "default", check=False), "Nothing to change")
    refused(op.invoke("tenants", "disable", "default", check=False), "cannot be disabled")
    # the default tenant's admin is no operator: the installation does not know it
    refused(cli.invoke("tenants", "list", check=False), "Check the credentials")


def test_export_and_import_a_tenants_configuration(cli: CLI) -> None:
    op = operator_cli(cli)
    op.invoke("tenants", "create", "acme", "--bundle", "directory-to-ldap-and-scim", "--json")
    op.invoke("tenants", "create", "beta", "--json")
    wrote = op.invoke("tenants", "export", "acme", "--output", "acme-config.json")
    assert "Wrote the configuration of tenant acme to acme-config.json." in wrote.stderr
    document = json.loads((cli.cwd / "acme-config.json").read_text())
    assert document["systems"]

    refused(op.invoke("tenants", "import", "beta", "acme-config.json", check=False), "--yes")
    imported = op.invoke("tenants", "import", "beta", "acme-config.json", "--yes")
    assert "+ create system" in imported.stdout
    assert "change(s) to tenant beta." in imported.stdout
    again = op.invoke("tenants", "import", "beta", "acme-config.json", "--yes")
    assert "Nothing to change." in again.stdout
    exported = json.loads(op.invoke("tenants", "export", "beta").stdout)
    assert exported["systems"] == document["systems"]

    (cli.cwd / "bad.json").write_text('{"systems": "no"}')
    bad = op.invoke("tenants", "import", "beta", "bad.json", "--yes", check=False)
    assert bad.returncode == 2 and "problem(s)" in bad.stderr
    refused(op.invoke("tenants", "export", "nobody", check=False), "No tenant 'nobody'")
