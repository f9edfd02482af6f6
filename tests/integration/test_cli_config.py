"""``provisor config ...`` as an administrator runs it: export, plan, apply, bundles against a
live server's admin API."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CLI

BUNDLE = "hr-to-identity-authentication"


def test_bundle_plan_apply_export(cli: CLI, tmp_path: Path) -> None:
    listed = cli.invoke("config", "bundles").stdout
    assert BUNDLE in listed and "Corporate LDAP (target)" in listed
    assert json.loads(cli.invoke("config", "bundles", "--json").stdout)["total"] == 2

    setup = tmp_path / "setup.json"
    written = cli.invoke("config", "bundle", BUNDLE, "--output", str(setup))
    assert f"Wrote the bundle {BUNDLE} to {setup}." in written.stderr
    assert json.loads(setup.read_text())["bundle"]["name"] == BUNDLE

    planned = cli.invoke("config", "plan", str(setup)).stdout.splitlines()
    assert planned[0] == '+ create system "HR Employees": CSV File source'
    assert (
        '+ create system "Identity Authentication": Identity Authentication target; enter the '
        "credentials Password"
    ) in planned
    assert '+ create link "HR Employees -> Local Identity Directory"' in planned
    assert "Plan: 12 to create, 0 to update, 0 to delete, 0 unchanged." in planned
    assert (
        '  Identity Authentication: Password  (provisor systems update "Identity '
        'Authentication" --credential Password)'
    ) in planned
    fingerprint = planned[-1].removeprefix("Fingerprint: ")
    assert len(fingerprint) == 64

    refused = cli.invoke("config", "apply", str(setup), check=False)
    assert refused.returncode == 1 and "Not confirmed: run it again with --yes" in refused.stderr
    applied = cli.invoke("config", "apply", str(setup), "--yes", "--expect", fingerprint)
    assert "Applied 12 change(s)." in applied.stdout
    nothing = cli.invoke("config", "apply", str(setup), "--yes")
    assert nothing.stdout.splitlines()[-1] == "Nothing to change."
    every = cli.invoke("config", "plan", str(setup), "--all").stdout
    assert '= unchanged schedule "HR Employees"' in every

    exported = tmp_path / "exported.json"
    cli.invoke("config", "export", "-o", str(exported))
    document = json.loads(exported.read_text())
    assert [s["name"] for s in document["systems"]] == [
        "HR Employees",
        "Identity Authentication",
        "Local Identity Directory",
        "Local Identity Directory Source",
    ]
    document["systems"][1]["properties"]["URL"] = "https://prod.accounts.ondemand.com"
    exported.write_text(json.dumps(document))
    changed = cli.invoke("config", "plan", str(exported), "--json")
    plan = json.loads(changed.stdout)
    assert plan["counts"]["update"] == 1
    update = next(c for c in plan["changes"] if c["action"] == "update")
    assert update == {
        "action": "update",
        "kind": "system",
        "name": "Identity Authentication",
        "detail": "properties URL changed",
    }
    text = cli.invoke("config", "plan", str(exported)).stdout
    assert '~ update system "Identity Authentication": properties URL changed' in text


def test_stale_plans_and_bad_files(cli: CLI, tmp_path: Path) -> None:
    setup = tmp_path / "setup.json"
    cli.invoke("config", "bundle", BUNDLE, "-o", str(setup))
    fingerprint = cli.invoke("config", "plan", str(setup)).stdout.splitlines()[-1].split()[-1]
    cli.invoke(
        "systems",
        "create",
        "-f",
        "-",
        stdin=json.dumps(
            {"name": "Meanwhile", "type": "local-identity-directory", "role": "source"}
        ),
    )
    stale = cli.invoke("config", "apply", str(setup), "--yes", "--expect", fingerprint, check=False)
    assert stale.returncode == 1
    assert "changed since the plan; plan again. Nothing was changed." in stale.stderr

    document = json.loads(setup.read_text())
    document["systems"][0]["type"] = "fax"
    document["schedules"][0]["source"] = "Meanwhile"
    document["schedules"][1]["intervalMinutes"] = 5
    document["systems"][1]["sourceSystems"] = ["Nowhere"]
    setup.write_text(json.dumps(document))
    bad = cli.invoke("config", "plan", str(setup), check=False)
    assert bad.returncode == 2
    lines = bad.stderr.splitlines()
    assert lines[0] == "Error: the configuration has 3 problem(s):"
    assert lines[1].startswith("  - systems[HR Employees].type: unknown connector type 'fax'")
    assert len(lines) == 4

    (tmp_path / "broken.json").write_text("{")
    broken = cli.invoke("config", "plan", str(tmp_path / "broken.json"), check=False)
    assert broken.returncode == 2 and "is not valid JSON" in broken.stderr
    missing = cli.invoke("config", "bundle", "nothing", check=False)
    assert missing.returncode == 1 and "No bundle 'nothing'" in missing.stderr
