"""Files of systems stay in the data folder (or the operator's roots), and the CSV files the
server writes carry no spreadsheet formulas: a live server on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisor.connectors.base import BackendError, Role
from provisor.context import Context
from provisor.jobs.model import JobStatus
from provisor.settings import Settings
from tests.conftest import LiveServer, serve
from tests.connectors.test_csv import csv_system as csv_connector
from tests.jobs.conftest import add_users, lid_source, run_job

PROBLEM = "application/problem+json"


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(path="/api/v1") as client:
        yield client


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the data folder, with a file worth stealing."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "shadow.csv").write_text("id,userName\nroot,root:$6$hash\n")
    return folder


def csv_system(name: str, role: str, **properties: str) -> dict[str, Any]:
    return {"name": name, "type": "csv", "role": role, "properties": properties}


def refused(response: httpx.Response, *fragments: str) -> str:
    """The detail of a 400 problem naming each fragment, and no absolute server path."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    detail: str = response.json()["detail"]
    for fragment in fragments:
        assert fragment in detail, detail
    return detail


def cells(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("csv.user.file", "/etc/passwd"),
        ("csv.user.file", "../outside.csv"),
        ("csv.user.file", "exports/../../outside.csv"),
        ("csv.group.file", "/etc/group"),
        ("csv.user.file", "secret.key"),
        ("csv.user.file", "provisor.db"),
        ("csv.user.file", "provisor.db.entitylocks"),  # the entity locks of decision 0021
        ("csv.user.file", "initial-admin.json"),
    ],
)
def test_paths_out_of_the_data_folder_are_refused_when_saved(
    server: LiveServer, api: httpx.Client, key: str, value: str
) -> None:
    properties = {"csv.user.file": "users.csv", key: value}
    detail = refused(api.post("/systems", json=csv_system("Bad", "source", **properties)), key)
    assert str(server.settings.data_dir) not in detail

    good = api.post("/systems", json=csv_system("Good", "target", **{"csv.user.file": "u.csv"}))
    assert good.status_code == 201, good.text
    url = f"/systems/{good.json()['id']}"
    refused(api.patch(f"{url}/properties", json={"properties": {key: value}}), key)
    refused(api.put(f"{url}/properties", json={"properties": properties}), key)
    exported = api.get(f"{url}/export").raise_for_status().json()
    exported["properties"] = {**exported["properties"], **properties}
    refused(api.post("/systems/import", params={"name": "Imported"}, json=exported), key)
    assert api.get(url).json()["properties"]["csv.user.file"] == "u.csv"


def test_the_ldap_ca_file_is_confined_too(api: httpx.Client) -> None:
    body = {
        "name": "Directory",
        "type": "ldap",
        "role": "target",
        "properties": {
            "ldap.url": "ldaps://127.0.0.1:1",
            "ldap.user.path": "ou=people,dc=example",
            "ldap.tls.ca.file": "/etc/ssl/private/server.key",
        },
    }
    refused(api.post("/systems", json=body), "ldap.tls.ca.file")


def test_a_link_leading_out_fails_test_connection_and_jobs(
    server: LiveServer, api: httpx.Client, outside: Path
) -> None:
    data = server.settings.data_dir
    source = api.post("/systems", json=csv_system("Linked", "source", **{"csv.user.file": "l.csv"}))
    assert source.status_code == 201, source.text
    (data / "l.csv").symlink_to(outside / "shadow.csv")  # after the save, as an intruder would
    result = api.post(f"/systems/{source.json()['id']}/test").json()
    assert result["ok"] is False
    assert "csv.user.file" in result["message"] and "symbolic link" in result["message"]
    assert str(outside) not in result["message"] and "root" not in result["message"]

    exports = data / "exports"
    exports.symlink_to(outside, target_is_directory=True)
    users = lid_source(server.services, "LID")
    add_users(server.services, "ada")
    target = csv_system("Out", "target", **{"csv.user.file": "exports/users.csv"})
    made = api.post("/systems", json={**target, "sourceSystemIds": [users.id]})
    refused(made, "csv.user.file", "symbolic link")  # the link exists: refused at once
    exports.unlink()
    made = api.post("/systems", json={**target, "sourceSystemIds": [users.id]})
    assert made.status_code == 201, made.text
    exports.symlink_to(outside, target_is_directory=True)
    job = run_job(server.services, users.id)
    assert job.status is not JobStatus.SUCCESS
    assert not (outside / "users.csv").exists(), "nothing was written outside the data folder"
    logs, _ = server.services.jobs.entity_logs(Context.administrator("test"), job.id, ["failed"])
    reasons = {log.reason for log in logs}
    assert reasons == {
        "Out: csv.user.file: exports/users.csv is a symbolic link leading out of its folder"
    }


def test_a_target_creates_missing_folders_in_the_data_folder(
    server: LiveServer, api: httpx.Client
) -> None:
    users = lid_source(server.services, "LID")
    add_users(server.services, "ada", "grace")
    target = csv_system("Nested", "target", **{"csv.user.file": "exports/2026/12/users.csv"})
    made = api.post("/systems", json={**target, "sourceSystemIds": [users.id]})
    assert made.status_code == 201, made.text
    tested = api.post(f"/systems/{made.json()['id']}/test").json()
    assert tested["ok"] is True, tested
    assert "created on the first write" in tested["message"]
    assert str(server.settings.data_dir) not in tested["message"]
    job = run_job(server.services, users.id)
    assert job.status is JobStatus.SUCCESS, job.error
    written = cells(server.settings.data_dir / "exports" / "2026" / "12" / "users.csv")
    assert sorted(row["userName"] for row in written.values()) == ["ada", "grace"]


def test_a_fifo_is_refused_not_waited_on(server: LiveServer, api: httpx.Client) -> None:
    os.mkfifo(server.settings.data_dir / "pipe.csv")
    source = api.post(
        "/systems", json=csv_system("Pipe", "source", **{"csv.user.file": "pipe.csv"})
    )
    assert source.status_code == 201, source.text
    result = api.post(f"/systems/{source.json()['id']}/test", timeout=20).json()
    assert result["ok"] is False
    assert result["message"] == "pipe.csv: cannot open the file: not a regular file"


def test_an_operator_root_is_allowed(settings: Settings, outside: Path) -> None:
    rooted = settings.model_copy(update={"file_roots": [outside]})
    with serve(rooted) as server, server.client(path="/api/v1") as api:
        users = lid_source(server.services, "LID")
        add_users(server.services, "ada")
        file = str(outside / "new" / "users.csv")
        target = csv_system("Shared", "target", **{"csv.user.file": file})
        made = api.post("/systems", json={**target, "sourceSystemIds": [users.id]})
        assert made.status_code == 201, made.text
        assert run_job(server.services, users.id).status is JobStatus.SUCCESS
        assert [r["userName"] for r in cells(outside / "new" / "users.csv").values()] == ["ada"]
        elsewhere = csv_system("Elsewhere", "source", **{"csv.user.file": "/etc/passwd"})
        refused(api.post("/systems", json=elsewhere), "csv.user.file", "PROVISOR_FILE_ROOTS")


def test_the_root_setting_takes_absolute_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISOR_FILE_ROOTS", os.pathsep.join(["/srv/exports", "/srv/imports"]))
    assert Settings().file_roots == [Path("/srv/exports"), Path("/srv/imports")]
    monkeypatch.setenv("PROVISOR_FILE_ROOTS", "exports")
    with pytest.raises(ValueError, match="absolute"):
        Settings()


FORMULAS = ['=HYPERLINK("http://x")', "+1+2", "-3+4", "@SUM(A1)", "\tTAB", "\rCR"]


@pytest.mark.parametrize("escape", ["default", "false"])
def test_formulas_are_escaped_unless_turned_off(
    server: LiveServer, api: httpx.Client, escape: str
) -> None:
    users = lid_source(server.services, "LID")
    names = [f"user{i}" for i in range(len(FORMULAS))]
    for name, formula in zip(names, FORMULAS, strict=True):
        add_users(server.services, name, displayName=formula)
    properties = {"csv.user.file": "users.csv"}
    if escape == "false":
        properties["csv.escape.formulas"] = "false"
    made = api.post(
        "/systems",
        json={**csv_system("Sheet", "target", **properties), "sourceSystemIds": [users.id]},
    )
    assert made.status_code == 201, made.text
    assert run_job(server.services, users.id).status is JobStatus.SUCCESS
    written = {
        row["userName"]: row["displayName"]
        for row in cells(server.settings.data_dir / "users.csv").values()
    }
    expected = FORMULAS if escape == "false" else ["'" + f for f in FORMULAS]
    assert [written[name] for name in names] == expected


def test_the_identity_management_export_escapes_formulas(api: httpx.Client) -> None:
    body = {
        "name": "-cmd",
        "description": '=HYPERLINK("http://x")',
        "type": "scim",
        "role": "proxy",
        "properties": {"URL": "https://example.invalid/scim", "Authentication": "NoAuthentication"},
    }
    made = api.post("/systems", json=body)
    assert made.status_code == 201, made.text
    exported = api.get(f"/systems/{made.json()['id']}/export", params={"format": "csv"})
    row = next(csv.DictReader(exported.text.splitlines()))
    assert row["Name"] == "'-cmd" and row["SYSTEM_PRIVILEGE"] == "PRIV:SYSTEM:-cmd"
    assert row["Description"] == '\'=HYPERLINK("http://x")'


@pytest.mark.anyio
async def test_a_file_in_utf16_without_its_mark_is_a_clear_failure(tmp_path: Path) -> None:
    """Review finding: `UnicodeError` ("UTF-16 stream does not start with BOM") escaped the
    CSV connector: Test Connection answered 500 and a job an unexpected error."""
    (tmp_path / "users.csv").write_bytes(b"id,userName\n1,ada\n")
    connector = csv_connector(tmp_path, Role.SOURCE, groups=False, csv_encoding="utf-16")
    async with connector:
        with pytest.raises(BackendError, match=r"users\.csv, line 1: not utf-16 text"):
            await connector.test_connection()
