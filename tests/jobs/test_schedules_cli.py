"""Schedules through the admin API and ``provisor schedules``: every source's schedule by
name, turning one off, deleting with confirmation."""

from __future__ import annotations

import json

from tests.conftest import CLI
from tests.jobs.conftest import lid_source


def test_schedules_by_name_through_the_api_and_the_cli(cli: CLI) -> None:
    source = lid_source(cli.server.services)
    cli.invoke("schedules", "set", "LID", "--every", "40")
    with cli.server.client(path="/api/v1") as api:
        [listed] = api.get("/schedules").json()["items"]
        assert (listed["systemId"], listed["systemName"]) == (source.id, "LID")
        off = api.post(f"/systems/{source.id}/schedule/disable").json()
        assert off["enabled"] is False and off["nextRun"] is None
    table = cli.invoke("schedules", "list").stdout
    assert "LID" in table and source.id in table and "every 40 minutes" in table

    weekly = cli.invoke(
        "schedules", "set", "LID", "--days", "MON,FRI", "--at", "02:30", "--json"
    ).stdout
    assert json.loads(weekly)["daysOfWeek"] == ["MON", "FRI"]
    assert "MON,FRI at 02:30 (UTC), off" in cli.invoke("schedules", "off", "LID").stdout
    shown = cli.run("schedules", "show", source.id).stdout
    assert f"LID ({source.id})" in shown

    too_often = cli.invoke("schedules", "set", "LID", "--every", "10", check=False)
    assert too_often.returncode == 1 and "larger than 30" in too_often.stderr
    unconfirmed = cli.invoke("schedules", "delete", "LID", check=False)
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    assert "Deleted the schedule of LID" in cli.invoke("schedules", "delete", "LID", "-y").stdout
    gone = cli.invoke("schedules", "show", "LID", check=False)
    assert gone.returncode == 1 and "has no schedule" in gone.stderr
    assert json.loads(cli.invoke("schedules", "list", "--json").stdout)["items"] == []
