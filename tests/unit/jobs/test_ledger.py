"""A run's specification and ledger (jobs/ledger.py): what the pipeline's stages share."""

from __future__ import annotations

from typing import Any

from provisor.connectors.base import Role
from provisor.jobs.ledger import HIDDEN, Ledger, Run, RunSpec
from provisor.jobs.model import Action, JobType, Trigger
from provisor.jobs.pipeline import Pipeline
from provisor.jobs.plan import Participant


def participant(name: str, role: Role = Role.TARGET, **properties: str) -> Participant:
    return Participant(
        id=f"{name}-id",
        name=name,
        role=role,
        prefix="csv",
        connector=None,  # type: ignore[arg-type]
        transformation=None,  # type: ignore[arg-type]
        properties=properties,
    )


def run(type: JobType = JobType.READ, **source_properties: str) -> Run:
    spec = RunSpec(
        run_id="job",
        seen_by="chain",
        type=type,
        trigger=Trigger.IMMEDIATE,
        source=participant("LID", Role.SOURCE, **source_properties),
        targets=(participant("CSV"), participant("SCIM")),
        resume_from={"user": 20},
    )
    opdata: Any = None
    return Run(spec, opdata)


def test_the_specification_is_immutable_and_the_ledger_starts_from_it() -> None:
    current = run()
    assert current.ledger.checkpoint == {"user": 20}
    current.ledger.checkpoint["user"] = 40
    assert current.spec.resume_from == {"user": 20}
    assert not current.spec.simulate and run(JobType.SIMULATE).spec.simulate
    try:
        current.spec.trace = True  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("a run specification cannot change")


def test_counts_failures_and_outcomes_per_system() -> None:
    current = run()
    source, csv, scim = current.source, *current.targets
    current.count("user", source, Action.READ)
    current.count("user", csv, Action.CREATED)
    current.count("user", scim, Action.CREATED)
    current.count("user", scim, Action.FAILED)
    ledger = current.ledger
    assert ledger.counts[("user", "LID-id", "LID", "source")].read == 1
    assert ledger.counts[("user", "CSV-id", "CSV", "target")].created == 1
    assert ledger.action_of("LID-id", "user") is Action.READ
    assert ledger.action_of("CSV-id", "user") is Action.CREATED
    assert ledger.action_of("SCIM-id", "user") is Action.FAILED  # the most telling
    assert ledger.action_of("CSV-id", "group") is Action.READ
    assert ledger.failed

    current.fail_target(scim, "down")
    current.fail_target(scim, "still down")
    assert current.fatal(scim) == "down" and current.fatal(csv) is None
    assert ledger.errors == ["Target SCIM: down"]
    assert Pipeline(current).outcome(scim, "user").reason == "down"


def test_every_change_is_logged_with_its_name_and_content_only_when_asked() -> None:
    current = run(JobType.READ, **{"ips.trace.updated.entity.content": "true"})
    csv = current.targets[0]
    current.log(Action.CREATED, "user", csv, "1", None, {"userName": "ada"}, name="ada")
    current.log(Action.UPDATED, "user", csv, "2", None, {"userName": "bob"}, target_id="t2")
    current.log(Action.FAILED, "user", csv, "3", "no", {"userName": "eve"}, name="eve")
    logs = current.ledger.take_logs()
    assert [
        (log.action, log.entity_id, log.name, log.target_entity_id, log.content) for log in logs
    ] == [
        ("created", "1", "ada", None, None),
        ("updated", "2", None, "t2", '{"userName":"bob"}'),
        ("failed", "3", "eve", None, HIDDEN),
    ]
    assert current.ledger.take_logs() == []
    assert current.ledger.reason_of("CSV-id") is None
    simulated = run(JobType.SIMULATE)
    simulated.log(Action.UPDATED, "user", simulated.targets[0], "bob", "diff", None)
    assert [log.reason for log in simulated.ledger.logs] == ["diff"]


def test_a_ledger_of_its_own_per_run() -> None:
    assert Ledger().counts is not Ledger().counts
