"""SCIM targets get what they declare (/Schemas, /ResourceTypes), and a job's outcome says
what a target did not take: undeclared extensions and attributes left out, entity types a
target ignores (decision 0019). The standard SCIM server is scim2-server on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from provisor.context import Context
from provisor.jobs.model import JobStatus, JobType
from provisor.runtime import Services
from provisor.systems.model import System
from provisor.types import EntityType
from tests.connectors.scim_peers import SCIM2Server, scim2_server
from tests.helpers import group_body
from tests.jobs.conftest import add_users, lid_source, run_job, stats, system

CTX = Context.system("tests")  # the service calls a test makes directly

CUSTOM = "urn:sap:cloud:scim:schemas:extension:custom:2.0:User"


def scim2_target(services: Services, source: System, peer: SCIM2Server, **extra: str) -> System:
    return system(
        services,
        name="scim2-server",
        type="scim",
        role="target",
        sourceSystemIds=[source.id],
        properties={"URL": peer.url, "Authentication": "NoAuthentication", **extra},
    )


def failures(services: Services, job_id: str) -> list[Any]:
    return [
        r.reason
        for r in services.jobs.entity_logs(Context.administrator("test"), job_id, ["failed"])[0]
    ]


def peer_users(peer: SCIM2Server) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=peer.url) as client:
        return {u["userName"]: u for u in client.get("/Users").json()["Resources"]}


def test_defaults_reach_a_standard_scim_server_once_discovered(sqlite_services: Services) -> None:
    services = sqlite_services
    ids = add_users(services, "ann", "bob")
    services.directory.create(CTX, EntityType.GROUP, group_body("Ops", list(ids.values())), "/scim")
    with scim2_server() as peer:
        scim2_target(services, lid_source(services), peer)
        job = run_job(services, "LID")
        assert job.status is JobStatus.SUCCESS, failures(services, job.id)
        assert (peer.asked("Schemas"), peer.asked("ResourceTypes")) == (1, 1)  # once per job
        users = peer_users(peer)
        with httpx.Client(base_url=peer.url) as client:
            [ops] = client.get("/Groups").json()["Resources"]
    assert set(users) == {"ann", "bob"}
    assert all(CUSTOM not in u for u in users.values())
    assert sorted(m["value"] for m in ops["members"]) == sorted(u["id"] for u in users.values())
    assert stats(job, "scim2-server", "group")["created"] == 1
    outcome = job.outcome or ""
    assert f"Target scim2-server does not declare {CUSTOM}" in outcome
    assert "left out of 2 users (scim.schema.discovery=false sends them)" in outcome
    assert "No groups written" not in outcome


def test_simulate_and_trace_list_what_is_left_out(sqlite_services: Services) -> None:
    services = sqlite_services
    add_users(services, "cy")
    with scim2_server() as peer:
        scim2_target(services, lid_source(services), peer)
        job = run_job(services, "LID", JobType.SIMULATE, trace=True)
        assert peer_users(peer) == {}
    assert job.status is JobStatus.SUCCESS, failures(services, job.id)
    [created] = [
        r
        for r in services.jobs.entity_logs(Context.administrator("test"), job.id, ["created"])[0]
        if r.system_name == "scim2-server"
    ]
    reason = json.loads(created.reason or "")
    assert CUSTOM in reason["leftOut"]
    assert not any(d["attribute"].startswith(CUSTOM) for d in reason["diff"])
    [step] = [s for s in json.loads(created.content or "")["trace"] if s["status"] == "left out"]
    assert CUSTOM in step["value"]
    assert f"Target scim2-server does not declare {CUSTOM}" in (job.outcome or "")


def test_the_property_turns_discovery_off(sqlite_services: Services) -> None:
    services = sqlite_services
    add_users(services, "dan")
    with scim2_server() as peer:
        scim2_target(services, lid_source(services), peer, **{"scim.schema.discovery": "false"})
        job = run_job(services, "LID")
        assert peer.asked("Schemas") == 0
    # sent as the transformation makes it: scim2-server refuses the SAP extension
    assert job.status is JobStatus.FINISHED_WITH_ERROR
    assert any(CUSTOM in reason for reason in failures(services, job.id))
    assert "does not declare" not in (job.outcome or "")


def test_a_target_without_schemas_gets_what_the_transformation_makes(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    add_users(services, "eve")
    with scim2_server(missing=("Schemas",)) as peer:
        scim2_target(services, lid_source(services), peer)
        write = json.loads(
            services.systems.transformation(Context.system("test"), "scim2-server", "write").text
        )
        write["user"]["mappings"].append({"type": "remove", "targetPath": f"$['{CUSTOM}']"})
        services.systems.save_transformation(
            Context.administrator("t"),
            "scim2-server",
            "write",
            write,
            description="no SAP extension",
        )
        job = run_job(services, "LID")
        assert set(peer_users(peer)) == {"eve"}
    assert job.status is JobStatus.SUCCESS, failures(services, job.id)
    assert (
        "Target scim2-server: its schemas could not be read (GET /v2/Schemas: not found "
        "(HTTP 404)); entities are sent as the write transformation makes them."
    ) in (job.outcome or "")


def test_the_outcome_names_entity_types_a_target_does_not_take(
    sqlite_services: Services, tmp_path: Path
) -> None:
    services = sqlite_services
    ids = add_users(services, "fay")
    services.directory.create(CTX, EntityType.GROUP, group_body("Ops", list(ids.values())), "/scim")
    source = lid_source(services)
    for name, files in (("Users only", ("users",)), ("No groups", ("users", "groups"))):
        system(
            services,
            name=name,
            type="csv",
            role="target",
            sourceSystemIds=[source.id],
            properties={f"csv.{f[:-1]}.file": str(tmp_path / f"{name}-{f}.csv") for f in files},
        )
    write = json.loads(
        services.systems.transformation(Context.system("test"), "No groups", "write").text
    )
    write["group"]["ignore"] = True
    services.systems.save_transformation(
        Context.administrator("t"),
        "No groups",
        "write",
        write,
        description="no groups",
    )
    job = run_job(services, "LID")
    assert job.status is JobStatus.SUCCESS, failures(services, job.id)
    assert stats(job, "No groups")["created"] == stats(job, "Users only")["created"] == 1
    outcome = job.outcome or ""
    assert "No groups written to Users only: it holds no groups (1 read from LID)." in outcome
    assert (
        'No groups written to No groups: its write transformation ignores them ("group": '
        '{"ignore": true}) (1 read from LID).'
    ) in outcome
    assert "No users written" not in outcome
