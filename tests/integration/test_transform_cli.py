"""``provisor transform validate|apply``, run in a subprocess as the acceptance scripts do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from provisor.transform.defaults import default_transformation

PROVISOR = [sys.executable, "-m", "provisor", "transform"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROVISOR, *args], capture_output=True, text=True, input=stdin, timeout=60, check=False
    )


def write(path: Path, content: Any) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_validate(tmp_path: Path) -> None:
    good = write(tmp_path / "good.json", default_transformation("ldap", "write"))
    result = run("validate", good, "--type", "ldap")
    assert result.returncode == 0, result.stderr
    assert "Valid" in result.stdout
    bad = write(
        tmp_path / "bad.json",
        {
            "user": {
                "mappings": [
                    {"sourcePath": "$.a[", "targetPath": "$.b"},
                    {
                        "sourcePath": "$.a",
                        "targetPath": "$.b",
                        "functions": [{"type": "frobnicate"}],
                    },
                ]
            }
        },
    )
    result = run("validate", bad)
    assert result.returncode == 2
    assert "user.mappings[0].sourcePath" in result.stdout
    assert "user.mappings[1].functions[0].function" in result.stdout
    assert "Traceback" not in result.stderr
    assert run("validate", write(tmp_path / "x.json", "{not json")).returncode == 2
    missing = run("validate", str(tmp_path / "nowhere.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_a_property_not_set_names_nothing(tmp_path: Path) -> None:
    """The LDAP default without its ldap.attribute.* properties: refused with each property
    named, never a document with the attribute "null"."""
    document = write(tmp_path / "ldap.json", default_transformation("ldap", "write"))
    entity = write(tmp_path / "e.json", {"userName": "frank", "name": {"familyName": "Miller"}})
    result = run("apply", document, "--input", entity, "--property", "ldap.attribute.user.id=uid")
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    assert (
        "user.mappings[5].targetPath: the property ldap.attribute.user.surname is not set"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    invalid = run("validate", document)
    assert invalid.returncode == 2
    assert "ldap.attribute.group.member is not set" in invalid.stdout
    typed = run("apply", document, "--input", entity, "--type", "ldap")
    assert typed.returncode == 0, typed.stderr
    assert json.loads(typed.stdout) == {"uid": ["frank"], "cn": ["frank"], "sn": ["Miller"]}
    unknown = run("validate", document, "--type", "no-such-type")
    assert unknown.returncode == 2 and "unknown connector type" in unknown.stderr


def test_apply_prints_the_result(tmp_path: Path) -> None:
    document = write(
        tmp_path / "t.json",
        {
            "user": {
                "mappings": [
                    {"sourcePath": "$.%ldap.attribute.user.id%[0]", "targetPath": "$.userName"},
                    {"constant": "new", "targetPath": "$.state", "scope": "createEntity"},
                    {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id"},
                    {
                        "sourcePath": "$.mail",
                        "targetPath": "$.emails[?(@.value)]",
                        "optional": True,
                        "preserveArrayWithSingleElement": True,
                    },
                ]
            }
        },
    )
    entity = write(tmp_path / "e.json", {"uid": ["jdoe"], "mail": ["j@x.org", "d@x.org"]})
    result = run(
        "apply",
        document,
        "--entity-type",
        "user",
        "--input",
        entity,
        "--property",
        "ldap.attribute.user.id=uid",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "userName": "jdoe",
        "state": "new",
        "emails": [{"value": "j@x.org"}, {"value": "d@x.org"}],
    }
    result = run(
        "apply",
        document,
        "--input",
        entity,
        "--property",
        "ldap.attribute.user.id=uid",
        "--operation",
        "update",
        "--variable",
        "entityIdTargetSystem=T-1",
        "--trace",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == "T-1"
    assert "mapping #1 (set: constant -> $.state)" not in result.stderr  # out of scope
    assert "mapping #0 (set: $.uid[0] -> $.userName): applied" in result.stderr
    from_stdin = run(
        "apply",
        document,
        "--input",
        "-",
        "--property",
        "ldap.attribute.user.id=uid",
        stdin='{"uid": ["x"]}',
    )
    assert json.loads(from_stdin.stdout)["userName"] == "x"


def test_apply_exit_codes(tmp_path: Path) -> None:
    document = write(
        tmp_path / "t.json",
        {
            "user": {
                "condition": "$.active == true",
                "mappings": [
                    {"sourcePath": "$.userName", "targetPath": "$.userName"},
                    {"constant": False, "targetPath": "$.active", "scope": "deleteEntity"},
                ],
            }
        },
    )
    skipped = run("apply", document, "--input", write(tmp_path / "a.json", {"userName": "x"}))
    assert skipped.returncode == 1
    assert "Entity condition [$.active == true] is not fulfilled" in skipped.stderr
    assert skipped.stdout == ""
    failed = run("apply", document, "--input", write(tmp_path / "b.json", {"active": True}))
    assert failed.returncode == 1 and "Mandatory value missing" in failed.stderr
    deleted = run(
        "apply", document, "--input", write(tmp_path / "c.json", {}), "--operation", "delete"
    )
    assert deleted.returncode == 0 and json.loads(deleted.stdout) == {"active": False}
    invalid = run(
        "apply",
        write(tmp_path / "bad.json", {"user": {"mappings": [{"constant": 1}]}}),
        "--input",
        write(tmp_path / "d.json", {}),
    )
    assert invalid.returncode == 2 and "needs a target" in invalid.stderr
    bad_entity = run("apply", document, "--input", write(tmp_path / "e.json", "{"))
    assert bad_entity.returncode == 2 and "not valid JSON" in bad_entity.stderr
    bad_pair = run("apply", document, "--input", str(tmp_path / "a.json"), "--property", "novalue")
    assert bad_pair.returncode == 2 and "KEY=VALUE" in bad_pair.stderr
