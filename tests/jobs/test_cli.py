"""``provisor jobs`` against a live server: starting with and without a job runner, following
a job, what it changed, exports, validation, settings and the destructive commands."""

from __future__ import annotations

import json
import re
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any, cast

import pytest

from provisor.cli import jobs as cli_jobs
from provisor.context import Context
from provisor.remote.jobs import Job, Jobs
from provisor.systems.model import SystemChanges
from tests.conftest import CLI
from tests.jobs.conftest import add_users, lid_source, running_jobs
from tests.jobs.test_pipeline import csv_target

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def flat(text: str) -> str:
    """Text as one line (the console wraps long lines)."""
    return " ".join(text.split())


def _setup(cli: CLI) -> dict[str, str]:
    services = cli.server.services
    ids = add_users(services, "ada", "grace")
    source = lid_source(services)
    csv_target(services, source.id, cli.cwd)
    return ids


def test_a_job_queued_without_a_runner_says_so_and_waits_with_one(cli: CLI) -> None:
    _setup(cli)
    queued = cli.invoke("jobs", "start", "LID")
    assert queued.stdout.startswith("Queued: READ job")
    warning = flat(queued.stderr)
    assert "No job runner is running" in warning and "start provisor worker" in warning
    assert "No job runner is running" in cli.invoke("jobs", "runners").stdout
    [job_id] = UUID.findall(queued.stdout)
    assert "Manually Terminated" in cli.invoke("jobs", "stop", job_id).stdout

    with running_jobs(cli.server.services) as runner:
        done = cli.invoke("jobs", "start", "LID", "--wait")
        assert runner.name in cli.invoke("jobs", "runners").stdout
    assert "Warning" not in done.stderr, "a runner is alive"
    assert "Success" in done.stdout and "CSV (target)" in done.stdout
    [finished] = json.loads(cli.invoke("jobs", "list", "--status", "Success", "--json").stdout)[
        "items"
    ]
    detail = json.loads(cli.invoke("jobs", "show", finished["id"], "--json").stdout)
    assert {(r["systemName"], r["created"]) for r in detail["statistics"]} == {
        ("LID", 0),
        ("CSV", 2),
    }
    shown = cli.invoke("jobs", "show", finished["id"]).stdout
    assert f"{finished['id']} of LID ({finished['sourceSystemId']})" in shown
    assert finished["id"] in cli.invoke("jobs", "list").stdout, "ids are never cut"


def test_logs_list_what_a_job_changed_by_name_and_content_only_when_asked(cli: CLI) -> None:
    ids = _setup(cli)
    with running_jobs(cli.server.services):
        first = json.loads(cli.invoke("jobs", "start", "LID", "--wait", "--json").stdout)
        listed = cli.invoke("jobs", "logs", first["id"]).stdout
        assert "2 entries." in listed
        for name in ("ada", "grace"):
            assert re.search(rf"created\s+user\s+{name}\s+{ids[name]}\s+CSV", listed), listed
        page = json.loads(cli.invoke("jobs", "logs", first["id"], "--json").stdout)
        assert {(e["name"], e["content"]) for e in page["items"]} == {
            ("ada", None),
            ("grace", None),
        }

        cli.server.services.systems.update(
            Context.administrator("t"),
            "LID",
            SystemChanges(properties={"ips.trace.updated.entity.content": "true"}),
        )
        resync = cli.invoke("jobs", "start", "LID", "--type", "RESYNC", "--wait", "--json")
    job = json.loads(resync.stdout)
    updated = json.loads(
        cli.invoke("jobs", "logs", job["id"], "--action", "updated", "--json").stdout
    )
    assert updated["total"] == 2
    assert all(e["content"]["userName"] == e["name"] for e in updated["items"]), "JSON, no string"
    none = cli.invoke("jobs", "logs", job["id"], "--action", "deleted", "--limit", "1").stdout
    assert "0 entries." in none
    bogus = cli.invoke("jobs", "logs", job["id"], "--action", "Bogus", check=False)
    assert bogus.returncode == 2 and "'failed', 'skipped', 'created'" in bogus.stderr


def test_unknown_values_and_flags_read_as_a_person_expects(cli: CLI) -> None:
    status = cli.invoke("jobs", "list", "--status", "Bogus", check=False)
    assert status.returncode == 2 and "Finished with Error" in status.stderr
    started = cli.invoke("jobs", "start", "--help").stdout.splitlines()
    flags = [line for line in started if "--trace" in line or "--wait" in line]
    assert len(flags) == 2 and not any("<bool>" in line for line in flags), flags
    missing = cli.invoke("jobs", "start", "nope", check=False)
    assert missing.returncode == 1 and "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_destructive_commands_ask_and_take_yes(cli: CLI) -> None:
    _setup(cli)
    with running_jobs(cli.server.services):
        cli.invoke("jobs", "start", "LID", "--wait")
    for command in (("purge",), ("reset", "CSV"), ("reset-tenant",)):
        refused = cli.invoke("jobs", *command, check=False)
        assert refused.returncode == 1 and "--yes" in flat(refused.stderr), command
        assert "--yes" in cli.invoke("jobs", *command, "--help").stdout
    assert "Removed 2 records of CSV." in cli.invoke("jobs", "reset", "CSV", "--yes").stdout
    assert "Deleted 1 job " in cli.invoke("jobs", "purge", "-y").stdout
    assert json.loads(cli.invoke("jobs", "list", "--json").stdout)["total"] == 0
    assert "Deleted 2 systems" in cli.invoke("jobs", "reset-tenant", "--yes").stdout


def test_settings_validation_and_exports(cli: CLI) -> None:
    _setup(cli)
    assert "kept 7 days" in cli.invoke("jobs", "settings").stdout
    assert "kept 14 days" in cli.invoke("jobs", "settings", "--retention-days", "14").stdout
    refused = cli.invoke("jobs", "settings", "--retention-days", "9", check=False)
    assert refused.returncode == 2 and "'7', '14', '30'" in refused.stderr

    samples = cli.cwd / "users.csv.sample"
    samples.write_text(
        "schemas[0],id,userName\nurn:ietf:params:scim:schemas:core:2.0:User,1,turing\n"
    )
    checked = json.loads(cli.invoke("jobs", "validate", "LID", "--users", str(samples)).stdout)
    assert checked["entities"][0]["targets"][0]["document"]["userName"] == "turing"
    as_json = cli.cwd / "users.json"
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "2"}
    as_json.write_text(json.dumps([{**user, "userName": "hopper"}]))
    checked = json.loads(cli.invoke("jobs", "validate", "LID", "--users", str(as_json)).stdout)
    assert checked["entities"][0]["targets"][0]["document"]["userName"] == "hopper"
    bad = cli.invoke("jobs", "validate", "LID", check=False)
    assert bad.returncode == 1 and "--users" in bad.stderr

    with running_jobs(cli.server.services):
        job = json.loads(cli.invoke("jobs", "start", "LID", "--wait", "--json").stdout)
    done = cli.run("jobs", "export", job["id"], "--log-type", "createdEntitiesLog")  # a process
    [written] = cli.cwd.glob("ips_jobCreatedEntitiesLogs_*.zip")
    assert written.name in done.stdout.replace("\n", "")
    [log] = zipfile.ZipFile(BytesIO(written.read_bytes())).namelist()
    text = zipfile.ZipFile(written).read(log).decode()
    assert "Name: ada" in text and "Entity ID in the target:" in text
    target = cli.cwd / "all.zip"
    cli.invoke("jobs", "export", job["id"], "-o", str(target))
    assert "job.json" in zipfile.ZipFile(target).namelist()
    unknown = cli.invoke("jobs", "export", "no-such-job", check=False)
    assert unknown.returncode == 1 and "no-such-job" in unknown.stderr


def test_export_refuses_an_unknown_log_type(cli: CLI, tmp_path: Path) -> None:
    bad = cli.invoke("jobs", "export", "any", "--log-type", "nope", check=False)
    assert bad.returncode == 2 and "allErrorsLog" in bad.stderr


class _Restarting:
    """Jobs of a server where job 1 loses its runner and job 2 continues it to Success."""

    def __init__(self) -> None:
        base: dict[str, Any] = {"sourceSystemId": "s", "statistics": [], "resumedFrom": None}
        self.jobs = {
            "1": {**base, "id": "1", "status": "Pending Restart"},
            "2": {**base, "id": "2", "status": "Success", "resumedFrom": "1"},
        }

    def get(self, job_id: str) -> Any:
        return self.jobs[job_id]

    def all(self, *, source: str, limit: int) -> Any:
        return {"items": list(self.jobs.values()), "total": 2}

    def runners(self) -> list[Any]:
        return [{"name": "r"}]


def test_waiting_follows_the_job_that_continues_one_whose_runner_died(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli_jobs, "POLL_SECONDS", 0)
    started = {"id": "1", "status": "Running", "sourceSystemId": "s", "statistics": []}
    final = cli_jobs._follow(cast(Jobs, _Restarting()), cast(Job, started), quiet=True)
    assert (final["id"], final["status"]) == ("2", "Success")
