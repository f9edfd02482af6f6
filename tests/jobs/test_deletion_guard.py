"""Issue 14, item 2: a full read that returns nothing (or far fewer entities than the last
complete one) deletes nothing in any run until an administrator confirms, once."""

from __future__ import annotations

from pathlib import Path

from provisor.jobs.model import JobStatus
from provisor.runtime import Services
from tests.jobs.conftest import add_users, lid_source, run_job, stats
from tests.jobs.test_pipeline import csv_target, rows


def test_an_empty_read_is_held_on_every_run(services: Services, tmp_path: Path) -> None:
    ids = add_users(services, "e1", "e2", "e3")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    assert run_job(services, "LID").status is JobStatus.SUCCESS
    for user_id in ids.values():
        services.directory.delete("User", user_id)
    for _ in range(3):  # the old guard held once, then its empty read became the baseline
        held = run_job(services, "LID")
        assert held.status is JobStatus.FINISHED_WITH_ERROR
        assert stats(held, "CSV").get("deleted", 0) == 0
        assert len(rows(tmp_path / "users.csv")) == 3
