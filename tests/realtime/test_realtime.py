"""Real-time provisioning (spec §6): a source pushes one change; it reaches every target at
once, with SAP's states in the response and in the real-time logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisor.context import Context
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import SystemChanges
from provisor.types import EntityType
from tests.conftest import CLI, LiveServer, serve
from tests.helpers import user_body
from tests.jobs.conftest import add_users, lid_source, run_job, stats
from tests.jobs.test_peers import scim_target
from tests.jobs.test_pipeline import csv_target, rows

CTX = Context.system("tests")  # the service calls a test makes directly

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
BASE = "/ipsproxy/service/api/v1/systems"


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[LiveServer]:
    with serve(Settings(data_dir=tmp_path / "remote")) as live:
        yield live


def states(answer: httpx.Response) -> dict[str, tuple[str, str]]:
    return {s["systemName"]: (s["operation"], s["state"]) for s in answer.json()["systems"]}


def remote_users(remote: LiveServer) -> dict[str, dict[str, Any]]:
    with remote.client(path="/scim") as client:
        return {u["userName"]: u for u in client.get("/Users").json()["Resources"]}


def test_a_change_reaches_every_target(
    server: LiveServer, remote: LiveServer, tmp_path: Path
) -> None:
    services: Services = server.services
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    scim_target(services, source.id, remote)
    [ada] = add_users(services, "ada").values()
    entity = json.loads(services.directory.get(CTX, EntityType.USER, ada, "/scim").body or b"")
    with server.client(auth=server.new_client("realtime_api"), path=BASE) as api:
        pushed = api.post(f"/{source.id}/entities/user", json=entity)
        assert pushed.status_code == 201, pushed.text
        assert pushed.headers["content-type"].startswith("application/scim+json")
        assert states(pushed) == {
            "LID": ("CREATE", "Entity Read"),
            "CSV": ("CREATE", "Entity Created"),
            "Remote": ("CREATE", "Entity Created"),
        }
        assert pushed.json()["status"] == "Finished Successfully"
        assert pushed.json()["entityId"] == ada
        assert set(rows(tmp_path / "users.csv")) == {"ada"}
        assert set(remote_users(remote)) == {"ada"}

        again = api.put(f"/{source.id}/entities/user/{ada}", json=entity)
        assert again.status_code == 200
        assert states(again)["Remote"] == ("UPDATE", "Entity Already Provisioned")

        services.directory.replace(
            CTX, EntityType.USER, ada, user_body("ada", displayName="Countess"), "/scim"
        )
        patched = api.patch(
            f"/{source.id}/entities/user/{ada}",
            json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []},
        )
        assert patched.status_code == 200, patched.text
        assert states(patched)["Remote"] == ("PATCH", "Entity Updated")
        assert remote_users(remote)["ada"]["displayName"] == "Countess"

        gone = api.delete(f"/{source.id}/entities/user/{ada}")
        assert gone.status_code == 200
        assert states(gone)["Remote"] == ("DELETE", "Entity Deleted")
        assert states(gone)["CSV"] == ("DELETE", "Entity Deleted")
        assert remote_users(remote) == {}
        never = api.delete(f"/{source.id}/entities/user/no-such-user")
        assert states(never)["Remote"] == ("DELETE", "Entity Not Provisioned")

        assert api.get(f"/{source.id}/entities/user").json()["totalResults"] == 0

    with server.client(path="/api/v1") as admin:
        logs = admin.get("/realtime-logs", params={"entityId": ada}).json()
        assert [i["operation"] for i in logs["items"]] == ["DELETE", "PATCH", "UPDATE", "CREATE"]
        assert logs["items"][-1]["status"] == "Finished Successfully"
        one = admin.get(f"/realtime-logs/{logs['items'][0]['id']}").json()
        assert one["logType"] == "Real Time" and one["entityType"] == "user"
        assert admin.get("/realtime-logs/nope").status_code == 404


def test_conditions_and_failures_are_reported(server: LiveServer, tmp_path: Path) -> None:
    services: Services = server.services
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    read = json.loads(
        services.systems.transformation(Context.system("test"), source.id, "read").text
    )
    read["user"]["condition"] = "$.active == true"
    services.systems.save_transformation(
        Context.administrator("t"),
        source.id,
        "read",
        read,
        description="t",
    )
    [ada] = add_users(services, "ada", active=True).values()
    entity = json.loads(services.directory.get(CTX, EntityType.USER, ada, "/scim").body or b"")
    with server.client(auth=server.new_client("realtime_api"), path=BASE) as api:
        assert api.post(f"/{source.id}/entities/user", json=entity).status_code == 201
        entity["active"] = False
        skipped = api.put(f"/{source.id}/entities/user/{ada}", json=entity)
        assert states(skipped) == {
            "LID": ("UPDATE", "Entity Skipped"),
            "CSV": ("DELETE", "Entity Deleted"),
        }
        assert "deprovisioned" in skipped.json()["systems"][0]["reason"]
        assert rows(tmp_path / "users.csv") == {}

        broken = api.post(f"/{source.id}/entities/user", json={"userName": "no schemas"})
        assert broken.status_code == 400
        assert broken.json()["schemas"] == [SCIM_ERROR]
        bad = api.post(f"/{source.id}/entities/user", content=b"{oops")
        assert bad.status_code == 400 and bad.json()["scimType"] == "invalidSyntax"
        assert api.post(f"/{source.id}/entities/role", json=entity).status_code == 404
        assert api.post("/no-such-system/entities/user", json=entity).status_code == 404
        other = api.put(f"/{source.id}/entities/user/other-id", json=entity)
        assert other.status_code == 400 and "path" in other.json()["detail"]
    with server.client(auth=server.new_client("manage_users"), path=BASE) as api:
        assert api.post(f"/{source.id}/entities/user", json=entity).status_code == 403
    assert (
        httpx.post(f"{server.url}{BASE}/{source.id}/entities/user", json=entity).status_code == 401
    )
    with server.client(path="/api/v1") as admin:
        failed = admin.get("/realtime-logs", params={"status": "Finished with Error"}).json()
        assert failed["total"] >= 2 and failed["items"][0]["errorMessage"]


def test_a_target_system_takes_no_changes(server: LiveServer, tmp_path: Path) -> None:
    services: Services = server.services
    source = lid_source(services)
    target = csv_target(services, source.id, tmp_path)
    with server.client(auth=server.new_client("realtime_api"), path=BASE) as api:
        refused = api.post(f"/{target.id}/entities/user", json=user_body("x"))
        assert refused.status_code == 400
        assert "source" in refused.json()["detail"]


def test_cli_shows_the_logs(cli: CLI, tmp_path: Path) -> None:
    sqlite_server = cli.server
    services: Services = sqlite_server.services
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    [ada] = add_users(services, "ada").values()
    entity = json.loads(services.directory.get(CTX, EntityType.USER, ada, "/scim").body or b"")
    with sqlite_server.client(auth=sqlite_server.new_client("realtime_api"), path=BASE) as api:
        log_id = api.post(f"/{source.id}/entities/user", json=entity).json()["id"]
    listed = cli.invoke("realtime", "logs", "--entity-id", ada).stdout
    assert log_id in listed and "1 entry." in listed, "whole ids"
    shown = cli.run("realtime", "show", log_id).stdout
    assert "Entity Created" in shown and "CSV" in shown and f"LID ({source.id})" in shown
    as_json = json.loads(cli.invoke("realtime", "logs", "--json", "--source", "LID").stdout)
    assert as_json["total"] == 1 and as_json["items"][0]["systems"][0]["systemName"] == "LID"
    ok = cli.invoke("realtime", "logs", "--status", "success", "--entity-type", "user").stdout
    assert log_id in ok
    assert "0 entries." in cli.invoke("realtime", "logs", "--status", "Finished with Error").stdout
    bogus = cli.invoke("realtime", "logs", "--status", "Bogus", check=False)
    assert bogus.returncode == 2 and "'success', 'error'" in bogus.stderr, "the valid ones"
    with sqlite_server.client(path="/api/v1") as admin:
        assert admin.get("/realtime-logs", params={"status": "Bogus"}).status_code == 400
        assert admin.get("/realtime-logs", params={"entityType": "role"}).status_code == 400
    missing = cli.invoke("realtime", "show", "nope", check=False)
    assert missing.returncode == 1 and "nope" in missing.stderr


def test_what_real_time_created_a_job_does_not_write_again(
    sqlite_server: LiveServer, remote: LiveServer, tmp_path: Path
) -> None:
    """A push creates the user in every target; a READ job that re-evaluates every entity
    (a property of the source changed) finds it unchanged: real-time stores the hash a job
    compares with."""
    services: Services = sqlite_server.services
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    scim_target(services, source.id, remote)
    [ada] = add_users(services, "ada").values()
    entity = json.loads(services.directory.get(CTX, EntityType.USER, ada, "/scim").body or b"")
    with sqlite_server.client(auth=sqlite_server.new_client("realtime_api"), path=BASE) as api:
        assert api.post(f"/{source.id}/entities/user", json=entity).status_code == 201
    version = remote_users(remote)["ada"]["meta"]["version"]
    written = (tmp_path / "users.csv").stat().st_mtime_ns
    services.systems.update(
        Context.administrator("t"),
        "LID",
        SystemChanges(properties={"ips.trace.created.entity": "true"}),
    )
    job = run_job(services, "LID")
    for target in ("Remote", "CSV"):
        assert (stats(job, target)["unchanged"], stats(job, target)["updated"]) == (1, 0), target
    assert remote_users(remote)["ada"]["meta"]["version"] == version
    assert (tmp_path / "users.csv").stat().st_mtime_ns == written
