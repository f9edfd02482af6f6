"""Jobs through the admin API, SAP's tenant admin API and the CLI: start, status, stop,
entities, schedules, validation and resets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from provisor.context import Context
from provisor.jobs.model import Trigger
from provisor.runtime import Services
from tests.conftest import LiveServer
from tests.helpers import user_body
from tests.jobs.conftest import add_users, lid_source
from tests.jobs.test_pipeline import csv_target, rows

PROBLEM = "application/problem+json"
PUBLIC = "/ips/service/publicapi/v1"


def drain(services: Services) -> list[str]:
    """Run every queued job here, as an executor would; their ids."""
    ran = []
    while (job := services.jobs.claim(Context.system("worker"), "test")) is not None:
        asyncio.run(services.jobs.run(Context.system("worker"), job))
        ran.append(job.id)
    return ran


def test_jobs_through_the_admin_api(server: LiveServer, tmp_path: Path) -> None:
    services = server.services
    add_users(services, "ada", "grace")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    with server.client(path="/api/v1") as api:
        started = api.post(f"/systems/{source.id}/jobs", json={"type": "READ"})
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["status"] == "Queued"
        assert started.headers["location"].endswith(f"/api/v1/jobs/{job['id']}")
        queued = api.post(f"/systems/{source.id}/jobs")
        assert queued.status_code == 409 and queued.headers["content-type"] == PROBLEM
        assert drain(services) == [job["id"]]

        done = api.get(f"/jobs/{job['id']}").json()
        assert done["status"] == "Success"
        assert set(rows(tmp_path / "users.csv")) == {"ada", "grace"}
        listed = api.get("/jobs", params={"source": "LID", "status": "Success"}).json()
        assert [j["id"] for j in listed["items"]] == [job["id"]] and listed["total"] == 1
        created = api.get(f"/jobs/{job['id']}/entities", params={"action": "created"}).json()
        assert sorted(e["name"] for e in created["items"]) == ["ada", "grace"]
        assert all(e["targetEntityId"] and e["content"] is None for e in created["items"])
        bogus = api.get(f"/jobs/{job['id']}/entities", params={"action": "Bogus"})
        assert bogus.status_code == 400 and "created" in bogus.json()["detail"]
        assert api.get("/job-runners").json() == {"items": []}, "this server runs no jobs"

        assert api.post(f"/jobs/{job['id']}/stop").status_code == 409, "it has ended"
        assert api.get("/jobs/nope").status_code == 404
        bad = api.post(f"/systems/{source.id}/jobs", json={"type": "DANCE"})
        assert bad.status_code == 400 and bad.headers["content-type"] == PROBLEM
        assert api.post("/systems/nope/jobs").status_code == 404

        waiting = api.post(f"/systems/{source.id}/jobs", json={"type": "RESYNC"}).json()
        stopped = api.post(f"/jobs/{waiting['id']}/stop").json()
        assert stopped["status"] == "Manually Terminated"

        assert api.put("/job-settings", json={"logRetentionDays": 14}).status_code == 200
        assert api.get("/job-settings").json() == {"logRetentionDays": 14}
        assert api.put("/job-settings", json={"logRetentionDays": 9}).status_code == 400

        reset = api.post(f"/systems/{source.id}/reset")
        assert reset.status_code == 200 and reset.json()["removedRecords"] == 2
    with server.client(auth=server.new_client("manage_users"), path="/api/v1") as api:
        assert api.post(f"/systems/{source.id}/jobs").status_code == 403
        assert api.get("/jobs").status_code == 403
        assert api.get("/job-runners").status_code == 403
    assert httpx.get(f"{server.url}/api/v1/jobs").status_code == 401


def test_the_tenant_admin_api_starts_jobs_and_reports_them(server: LiveServer) -> None:
    services = server.services
    add_users(services, "ada")
    source = lid_source(services)
    with server.client(auth=server.new_client("tenant_admin_api"), path=PUBLIC) as api:
        started = api.post(f"/startJob/{source.id}/jobs/READ")
        assert started.status_code == 202, started.text
        job_id = started.json()["jobId"]
        assert started.json()["status"] == "Queued"
        again = api.post(f"/startJob/{source.id}/jobs/RESYNC")
        assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
        assert api.post(f"/startJob/{source.id}/jobs/SIMULATE").status_code == 400
        assert api.post("/startJob/nope/jobs/READ").status_code == 404
        drain(services)
        status = api.get(f"/jobs/{job_id}").json()
        assert status["jobId"] == job_id and status["status"] == "Success"
        assert status["triggeredBy"].startswith("Identity Provisioning API - ")
        assert api.get(f"/jobLogs/{job_id}", params={"action": "export"}).status_code == 200
    with server.client(auth=server.new_client("manage_users"), path=PUBLIC) as other:
        assert other.post(f"/startJob/{source.id}/jobs/READ").status_code == 403


def test_schedules_start_read_jobs_on_their_grid(server: LiveServer) -> None:
    services = server.services
    source = lid_source(services)
    with server.client(path="/api/v1") as api:
        assert api.get(f"/systems/{source.id}/schedule").status_code == 404
        saved = api.put(f"/systems/{source.id}/schedule", json={"intervalMinutes": 45})
        assert saved.status_code == 200, saved.text
        first = datetime.fromisoformat(saved.json()["nextRun"].replace("Z", "+00:00"))
        assert timedelta(minutes=44) < first - datetime.now(UTC) <= timedelta(minutes=45)
        for bad in ({"intervalMinutes": 30}, {"daysOfWeek": ["XYZ"], "time": "02:00"}, {}):
            refused = api.put(f"/systems/{source.id}/schedule", json=bad)
            assert refused.status_code == 400 and refused.headers["content-type"] == PROBLEM
        weekly = {"daysOfWeek": ["MON", "FRI"], "time": "02:30", "timeZone": "Europe/Berlin"}
        assert api.put(f"/systems/{source.id}/schedule", json=weekly).json()["time"] == "02:30"
        assert api.put(f"/systems/{source.id}/schedule", json={"intervalMinutes": 60}).is_success

    scheduler = services.schedules

    def next_run() -> datetime:
        found = scheduler.get(Context.administrator("test"), source.id).next_run
        assert found is not None
        return datetime.fromisoformat(found.replace("Z", "+00:00"))

    due = next_run()
    assert scheduler.tick(due - timedelta(seconds=1)) == []
    late = due + timedelta(minutes=150)  # two more ticks passed: one job, no catching up
    [job_id] = scheduler.tick(late)
    assert services.jobs.get(Context.administrator("test"), job_id).trigger is Trigger.REPEAT
    assert next_run() == due + timedelta(minutes=180), "the grid holds, overrun ticks skipped"
    assert scheduler.tick(late) == [], "taken once"
    assert scheduler.tick(next_run()) == [], "the previous job still waits: the tick is skipped"
    drain(services)

    with server.client(path="/api/v1") as api:
        assert api.delete(f"/systems/{source.id}/schedule").status_code == 204
        assert api.delete(f"/systems/{source.id}/schedule").status_code == 404


def test_validation_writes_nothing_and_shows_every_target(
    server: LiveServer, tmp_path: Path
) -> None:
    services = server.services
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    schema = "urn:ietf:params:scim:schemas:core:2.0:User"
    samples = "schemas[0],id,userName,name.familyName,emails[0].value\n" + "".join(
        f"{schema},u{i},user{i},Family{i},user{i}@example.com\n" for i in range(25)
    )
    with server.client(path="/api/v1") as api:
        answer = api.post(f"/systems/{source.id}/validate", json={"users": samples})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["targets"] == ["CSV"] and len(result["entities"]) == 25, "no 10-row cap"
        first = result["entities"][0]
        assert first["read"]["status"] == "Transformed" and first["sourceId"] == "u0"
        [to_csv] = first["targets"]
        assert to_csv["status"] == "Transformed" and to_csv["trace"]
        assert to_csv["document"]["userName"] == "user0"
        no_schemas = api.post(f"/systems/{source.id}/validate", json={"users": "id\nx\n"})
        [failed] = no_schemas.json()["entities"]
        assert failed["read"]["status"] == "Failed" and "schemas" in failed["read"]["reason"]
        assert failed["targets"] == []

        as_csv = api.post(
            f"/systems/{source.id}/validate",
            params={"entityType": "user"},
            content=samples,
            headers={"content-type": "text/csv"},
        )
        assert as_csv.status_code == 200 and len(as_csv.json()["entities"]) == 25
        entities = {"users": [user_body("json1")], "groups": [{"id": "g", "displayName": "G"}]}
        as_json = api.post(f"/systems/{source.id}/validate", json=entities).json()
        assert [e["entityType"] for e in as_json["entities"]] == ["user", "group"]

        body: dict[str, Any]
        for body in ({"users": "id,userName\n1,a,extra\n"}, {"people": []}, {"users": 3}):
            refused = api.post(f"/systems/{source.id}/validate", json=body)
            assert refused.status_code == 400 and refused.headers["content-type"] == PROBLEM
        assert (
            "Row 2"
            in api.post(
                f"/systems/{source.id}/validate", json={"users": "id,userName\n1,a,extra\n"}
            ).json()["detail"]
        )
        broken = api.post(f"/systems/{source.id}/validate", content=b"{not json")
        assert broken.status_code == 400
    assert not (tmp_path / "users.csv").exists(), "nothing written"
    assert services.jobs.all(Context.administrator("test"))[1] == 0, "validation is no job"
