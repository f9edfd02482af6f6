"""``provisor systems ...`` as an administrator runs it: a client of a live server's admin API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provisor.context import Context
from provisor.systems.secrets import MASK
from tests.conftest import CLI

HR = {
    "name": "HR feed",
    "type": "SCIM System",
    "role": "source",
    "properties": {"URL": "https://hr.example.org/scim", "User": "sync"},
}
DIRECTORY = {"name": "Directory", "type": "local-identity-directory", "role": "target"}


def write(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def created(cli: CLI, data: dict[str, Any], *options: str) -> dict[str, Any]:
    done = cli.invoke("systems", "create", "-f", "-", "--json", *options, stdin=json.dumps(data))
    system: dict[str, Any] = json.loads(done.stdout)
    return system


def test_systems_commands(cli: CLI, tmp_path: Path) -> None:
    spec = write(tmp_path / "hr.json", HR)
    made = json.loads(cli.run("systems", "create", "--file", spec, "--json").stdout)
    assert made["name"] == "HR feed" and made["role"] == "source"
    created(cli, DIRECTORY)

    listed = json.loads(cli.invoke("systems", "list", "--json").stdout)
    assert {s["name"] for s in listed["items"]} == {"HR feed", "Directory"}
    table = cli.invoke("systems", "list", "--role", "source").stdout
    assert "HR feed" in table and "Directory" not in table and made["id"] in table

    cli.env["PROVISOR_CREDENTIAL_PASSWORD"] = "t0p-secret"
    updated = cli.invoke(
        "systems",
        "update",
        "HR feed",
        "--set",
        'scim.user.filter=userName sw "a"',
        "--credential",
        "Password",
        "--json",
    )
    shown = json.loads(updated.stdout)
    assert shown["properties"]["Password"] == MASK
    assert shown["properties"]["scim.user.filter"] == 'userName sw "a"'
    assert "t0p-secret" not in cli.invoke("systems", "show", "HR feed").stdout

    exported = tmp_path / "hr-export.json"
    cli.invoke("systems", "export", "HR feed", "-o", str(exported))
    assert json.loads(exported.read_text())["name"] == "HR feed"
    assert "t0p-secret" not in exported.read_text()
    clash = cli.invoke("systems", "import", str(exported), check=False)
    assert clash.returncode == 1 and "another name" in clash.stderr
    copy = cli.invoke("systems", "import", str(exported), "--name", "HR copy")
    assert "Enter the credentials again: Password" in copy.stdout

    assert cli.invoke("systems", "disable", "HR copy").returncode == 0
    disabled = json.loads(cli.invoke("systems", "list", "--disabled", "--json").stdout)
    assert [s["name"] for s in disabled["items"]] == ["HR copy"]

    assert "OK" in cli.invoke("systems", "test", "Directory").stdout
    failing = cli.invoke("systems", "test", "HR feed", check=False)
    assert failing.returncode == 1 and "Failed" in failing.stdout

    version = json.loads(cli.invoke("systems", "show", "HR copy", "--json").stdout)["version"]
    stale = cli.invoke(
        "systems",
        "update",
        "HR copy",
        "--description",
        "x",
        "--if-match",
        str(version - 1),
        check=False,
    )
    assert stale.returncode == 1 and f"at version {version}, not {version - 1}" in stale.stderr
    cli.invoke("systems", "delete", "HR copy", "--yes", "--if-match", str(version))
    missing = cli.invoke("systems", "show", "HR copy", check=False)
    assert missing.returncode == 1 and "No system" in missing.stderr
    unreadable = cli.invoke("systems", "create", "--file", str(tmp_path / "none.json"), check=False)
    assert unreadable.returncode == 2 and "Cannot read" in unreadable.stderr


def test_transformations(cli: CLI, tmp_path: Path) -> None:
    created(cli, DIRECTORY)
    history = cli.invoke("systems", "transformation", "history", "Directory", "write", "--json")
    first = json.loads(history.stdout)["items"][0]
    assert first["description"] == "Default Local Identity Directory version"

    broken = write(tmp_path / "broken.json", {"user": {"mappings": [{"sourcePath": "$["}]}})
    invalid = cli.invoke(
        "systems",
        "transformation",
        "save",
        "Directory",
        "write",
        broken,
        "-m",
        "try",
        check=False,
    )
    assert invalid.returncode == 2 and "user.mappings[0]" in invalid.stdout

    mine = '/* kept */\n{"user": {"mappings": [{"sourcePath": "$.userName", "targetPath": "$.x"}]}}'
    cli.invoke(
        "systems", "transformation", "save", "Directory", "write", "-", "-m", "mine", stdin=mine
    )
    assert cli.invoke("systems", "transformation", "show", "Directory", "write").stdout == (
        mine + "\n"
    )
    cli.invoke("systems", "transformation", "apply", "Directory", "write", "1")
    shown = cli.invoke("systems", "transformation", "show", "Directory", "write", "--json")
    assert json.loads(shown.stdout)["description"] == "Applied version 1"

    refused = cli.invoke("systems", "transformation", "reset", "Directory", "write", check=False)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    reset = cli.invoke("systems", "transformation", "reset", "Directory", "write", "--yes")
    assert "version 4 is current" in reset.stdout

    unknown = cli.invoke("systems", "transformation", "show", "Directory", "bogus", check=False)
    assert unknown.returncode == 2 and "'read'" in unknown.stderr and "'write'" in unknown.stderr


def test_targets_link_their_sources_by_name(cli: CLI) -> None:
    hr = created(cli, HR)
    target = created(cli, DIRECTORY, "--source", "HR feed")
    assert target["sourceSystems"] == [{"id": hr["id"], "name": "HR feed"}]
    other = created(cli, {**HR, "name": "Other"})

    cli.invoke("systems", "update", "Directory", "--source", other["id"], "--no-source", "hr FEED")
    shown = cli.invoke("systems", "show", "Directory").stdout
    assert f"source systems     Other ({other['id']})" in shown and "HR feed" not in shown
    source = cli.invoke("systems", "show", "Other").stdout
    assert f"target systems     Directory ({target['id']})" in source

    not_linked = cli.invoke("systems", "update", "Directory", "--no-source", "HR feed", check=False)
    assert not_linked.returncode == 1 and "HR feed is not a source system of Directory" in (
        not_linked.stderr
    )
    a_target = cli.invoke("systems", "update", "Directory", "--source", "Directory", check=False)
    assert a_target.returncode == 1 and "not a source" in a_target.stderr
    of_a_source = cli.invoke("systems", "update", "Other", "--source", "HR feed", check=False)
    assert of_a_source.returncode == 1 and "only targets have source systems" in (
        of_a_source.stderr
    )


def test_credentials_stay_off_the_command_line(cli: CLI, tmp_path: Path) -> None:
    created(cli, HR)
    on_the_line = cli.invoke(
        "systems", "update", "HR feed", "--credential", "Password=secret", check=False
    )
    assert on_the_line.returncode == 2
    assert "PROVISOR_CREDENTIAL_PASSWORD" in on_the_line.stderr
    unasked = cli.invoke("systems", "update", "HR feed", "--credential", "api.key", check=False)
    assert unasked.returncode == 2 and "set PROVISOR_CREDENTIAL_API_KEY" in unasked.stderr

    both = cli.invoke(
        "systems",
        "update",
        "HR feed",
        "-f",
        "-",
        "--credential-file",
        "Password=-",
        stdin="{}",
        check=False,
    )
    assert both.returncode == 2 and "Only one option reads standard input" in both.stderr
    key_file = tmp_path / "key"
    key_file.write_text("k3y\n")
    cli.invoke("systems", "update", "HR feed", "--credential-file", f"api.key={key_file}")
    cli.env["PROVISOR_CREDENTIAL_TOKEN"] = "t0ken"
    changed = cli.invoke(
        "systems",
        "update",
        "HR feed",
        "--credential-file",
        "Password=-",
        "--credential",
        "token",
        "--json",
        stdin="pa55\n",
    )
    system = json.loads(changed.stdout)
    assert set(system["credentialKeys"]) == {"api.key", "Password", "token"}  # api.key stays one
    assert system["properties"]["api.key"] == MASK
    effective = cli.server.services.systems.effective_properties(Context.system("test"), "HR feed")
    assert [effective[k] for k in ("api.key", "Password", "token")] == ["k3y", "pa55", "t0ken"]


def test_output_for_people(cli: CLI) -> None:
    system = created(cli, DIRECTORY)
    cli.env["COLUMNS"] = "50"
    assert system["id"] in cli.invoke("systems", "list").stdout  # ids are never cut short
    cli.env["COLUMNS"] = "200"

    refused = cli.invoke("systems", "delete", "Directory", check=False)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert cli.invoke("systems", "show", system["id"]).returncode == 0

    assert json.loads(cli.invoke("systems", "export", "Directory").stdout)["name"] == "Directory"
    proxy = created(cli, {"name": "P", "type": "scim", "role": "proxy"})
    csv = cli.invoke("systems", "export", "P", "--format", "csv").stdout
    assert f"/ipsproxy/service/api/v1/scim/{proxy['id']}" in csv
    bad_format = cli.invoke("systems", "export", "Directory", "--format", "xml", check=False)
    assert bad_format.returncode == 2 and "'json'" in bad_format.stderr

    types = cli.invoke("systems", "types").stdout
    assert "local-identity-directory" in types and "SCIM System" in types
    scim = cli.invoke("systems", "types", "scim").stdout
    assert "Authentication" in scim and "BasicAuthentication" in scim
    default = cli.invoke("systems", "types", "ldap", "--transformation", "read").stdout
    assert "user" in json.loads(default)
    nothing = cli.invoke("systems", "update", "Directory", check=False)
    assert nothing.returncode == 2 and "Nothing to change" in nothing.stderr
