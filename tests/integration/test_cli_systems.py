"""``provisor systems ...`` run as a user would: in a subprocess, on a data folder."""

from __future__ import annotations

import json
from pathlib import Path

from provisor.systems.secrets import MASK
from tests.integration.test_cli import run


def write(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_systems_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    spec = write(
        tmp_path / "hr.json",
        {
            "name": "HR feed",
            "type": "SCIM System",
            "role": "source",
            "properties": {"URL": "https://hr.example.org/scim", "User": "sync"},
        },
    )
    created = json.loads(run("systems", "create", "--file", spec, "--json", data_dir=data).stdout)
    assert created["name"] == "HR feed" and created["role"] == "source"
    lid = run(
        "systems",
        "create",
        "-f",
        "-",
        data_dir=data,
        check=False,
        stdin='{"name": "Directory", "type": "local-identity-directory", "role": "target"}',
    )
    assert lid.returncode == 0, lid.stderr

    listed = json.loads(run("systems", "list", "--json", data_dir=data).stdout)
    assert {s["name"] for s in listed["items"]} == {"HR feed", "Directory"}
    table = run("systems", "list", "--role", "source", data_dir=data).stdout
    assert "HR feed" in table and "Directory" not in table

    updated = run(
        "systems",
        "update",
        "HR feed",
        "--set",
        'scim.user.filter=userName sw "a"',
        "--credential",
        "Password=t0p-secret",
        "--json",
        data_dir=data,
    )
    shown = json.loads(updated.stdout)
    assert shown["properties"]["Password"] == MASK
    assert shown["properties"]["scim.user.filter"] == 'userName sw "a"'
    assert "t0p-secret" not in run("systems", "show", "HR feed", data_dir=data).stdout

    exported = tmp_path / "hr-export.json"
    run("systems", "export", "HR feed", "-o", str(exported), data_dir=data)
    assert "t0p-secret" not in exported.read_text()
    clash = run("systems", "import", str(exported), data_dir=data, check=False)
    assert clash.returncode == 1 and "another name" in clash.stderr
    copy = run("systems", "import", str(exported), "--name", "HR copy", data_dir=data)
    assert "Enter the credentials again: Password" in copy.stdout

    assert run("systems", "disable", "HR copy", data_dir=data).returncode == 0
    disabled = json.loads(run("systems", "list", "--disabled", "--json", data_dir=data).stdout)
    assert [s["name"] for s in disabled["items"]] == ["HR copy"]

    tested = run("systems", "test", "Directory", data_dir=data)
    assert "OK" in tested.stdout
    failing = run("systems", "test", "HR feed", data_dir=data, check=False)
    assert failing.returncode == 1 and "Failed" in failing.stdout

    history = run(
        "systems", "transformation", "history", "Directory", "write", "--json", data_dir=data
    )
    assert json.loads(history.stdout)["items"][0]["description"] == (
        "Default Local Identity Directory version"
    )
    broken = write(tmp_path / "broken.json", {"user": {"mappings": [{"sourcePath": "$["}]}})
    saved = run(
        "systems",
        "transformation",
        "save",
        "Directory",
        "write",
        broken,
        "-m",
        "try",
        data_dir=data,
        check=False,
    )
    assert saved.returncode == 2 and "user.mappings[0]" in saved.stdout

    version = json.loads(run("systems", "show", "HR copy", "--json", data_dir=data).stdout)[
        "version"
    ]
    stale = run(
        "systems",
        "update",
        "HR copy",
        "--description",
        "x",
        "--if-match",
        str(version - 1),
        data_dir=data,
        check=False,
    )
    assert stale.returncode == 1 and f"at version {version}, not {version - 1}" in stale.stderr
    gone = run("systems", "delete", "HR copy", "--yes", "--if-match", str(version), data_dir=data)
    assert gone.returncode == 0
    missing = run("systems", "show", "HR copy", data_dir=data, check=False)
    assert missing.returncode == 1 and "No system" in missing.stderr
    bad = run(
        "systems", "create", "--file", str(tmp_path / "none.json"), data_dir=data, check=False
    )
    assert bad.returncode == 2 and "Cannot read" in bad.stderr
