"""A tenant's configuration as one document: export, plan, apply, bundles.

Through the service the API and CLI use, on the real databases: a source installation on
SQLite (the tested setup) is promoted into the target installation, on SQLite and then on
PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisor.configuration.bundles import bundle, bundles
from provisor.configuration.model import Action, Kind, Plan
from provisor.context import Context
from provisor.errors import ConflictError, InvalidDocumentError
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import NewSystem, SystemChanges
from provisor.systems.service import Limits
from tests.conftest import SQLITE_FILE

CTX = Context.administrator("tester")
BADGE = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Badge"
HR_SECRET = "hr-S3cret-value"
IAS_SECRET = "ias-S3cret-value"
WRITE = {
    "user": {
        "mappings": [
            {"sourcePath": "$.userName", "targetPath": "$.userName"},
            {"sourcePath": "$.emails", "targetPath": "$.emails", "optional": True},
            {"constant": "%ips.application.id%", "targetPath": "$.title", "optional": True},
        ]
    }
}


@pytest.fixture
def tested(sqlite_template: Path, tmp_path: Path) -> Iterator[Services]:
    """The installation where the setup was tested (SQLite): a custom schema, a SCIM source
    with a schedule, an Identity Authentication target linked to it with its own write
    transformation; both with credentials."""
    folder = tmp_path / "tested"
    folder.mkdir()
    shutil.copyfile(sqlite_template, folder / SQLITE_FILE)
    services = Services.open(Settings(data_dir=folder))
    services.directory.create_schema(
        CTX,
        {
            "id": BADGE,
            "name": "Badge",
            "attributes": [{"name": "badgeId", "type": "string", "uniqueness": "server"}],
        },
    )
    hr = services.systems.create(
        CTX,
        NewSystem.model_validate(
            {
                "name": "HR",
                "type": "scim",
                "role": "source",
                "description": "SuccessFactors stand-in",
                "properties": {
                    "URL": "https://hr.example.com/scim",
                    "User": "sync",
                    "Password": HR_SECRET,
                    "scim.page.size": "200",
                },
            }
        ),
    )
    ias = services.systems.create(
        CTX,
        NewSystem.model_validate(
            {
                "name": "IAS",
                "type": "identity-authentication",
                "role": "target",
                "properties": {
                    "URL": "https://tenant.accounts.ondemand.com",
                    "User": "client-id",
                    "Password": IAS_SECRET,
                    "ips.delete.threshold.users": "50",
                },
                "sourceSystemIds": [hr.id],
            }
        ),
    )
    services.systems.save_transformation(CTX, ias.id, "write", WRITE, description="tested")
    services.schedules.put(CTX, "HR", {"enabled": True, "intervalMinutes": 60})
    yield services
    services.close()


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("exported", "product")}


def _by_action(plan: Plan) -> dict[Action, list[tuple[Kind, str]]]:
    found: dict[Action, list[tuple[Kind, str]]] = {a: [] for a in Action}
    for change in plan.changes:
        found[change.action].append((change.kind, change.name))
    return found


def _change(plan: Plan, kind: Kind, name: str) -> Any:
    return next(c for c in plan.changes if c.kind is kind and c.name == name)


def _fill_credentials(services: Services) -> None:
    services.systems.update(CTX, "HR", SystemChanges(), credentials={"Password": HR_SECRET})
    services.systems.update(CTX, "IAS", SystemChanges(), credentials={"Password": IAS_SECRET})


def test_promote_a_tested_setup(tested: Services, services: Services) -> None:
    exported = tested.configuration.export(CTX)
    text = json.dumps(exported)
    assert HR_SECRET not in text and IAS_SECRET not in text
    assert [s["name"] for s in exported["systems"]] == ["HR", "IAS"]
    assert exported["systems"][1]["sourceSystems"] == ["HR"]
    assert exported["systems"][1]["credentialKeys"] == ["Password"]
    assert exported["schedules"] == [{"source": "HR", "enabled": True, "intervalMinutes": 60}]
    assert [s["id"] for s in exported["customSchemas"]] == [BADGE]

    plan = services.configuration.plan(CTX, exported)
    actions = _by_action(plan)
    assert not actions[Action.UNCHANGED] and not actions[Action.UPDATE]
    assert actions[Action.CREATE] == [
        (Kind.CUSTOM_SCHEMA, BADGE),
        (Kind.SYSTEM, "HR"),
        (Kind.SYSTEM, "IAS"),
        (Kind.LINK, "HR -> IAS"),
        (Kind.TRANSFORMATION, "HR read"),
        (Kind.TRANSFORMATION, "IAS write"),
        (Kind.SCHEDULE, "HR"),
    ]
    assert plan.credentials() == {"HR": ["Password"], "IAS": ["Password"]}
    assert services.systems.all(CTX)[1] == 0, "a plan changes nothing"

    applied = services.configuration.apply(CTX, exported, expect=plan.fingerprint)
    assert applied.applied and applied.changes == plan.changes
    again = services.configuration.plan(CTX, exported)
    assert {c.action for c in again.changes} == {Action.UNCHANGED}
    assert again.credentials() == {"HR": ["Password"], "IAS": ["Password"]}
    ias = services.systems.get(CTX, "IAS")
    assert ias.source_systems[0].name == "HR"
    assert services.directory.schemas(CTX).schema(BADGE) is not None

    _fill_credentials(services)
    assert _comparable(services.configuration.export(CTX)) == _comparable(exported)
    final = services.configuration.plan(CTX, exported)
    assert {c.action for c in final.changes} == {Action.UNCHANGED}
    assert final.credentials() == {}


def test_property_changes_show_their_keys(tested: Services, services: Services) -> None:
    document = tested.configuration.export(CTX)
    services.configuration.apply(CTX, document)
    _fill_credentials(services)
    ias = next(s for s in document["systems"] if s["name"] == "IAS")
    ias["properties"]["ips.delete.threshold.users"] = "80"
    ias["properties"]["ias.group.prefix"] = "HR_"
    del ias["properties"]["ips.date.variable.format"]  # seeded: stays unless set to null
    ias["properties"]["Type"] = None
    ias["description"] = "production"
    plan = services.configuration.plan(CTX, document)
    change = _change(plan, Kind.SYSTEM, "IAS")
    assert change.action is Action.UPDATE
    assert change.detail == (
        "properties ias.group.prefix added; properties ips.delete.threshold.users changed; "
        "properties Type removed; description changed"
    )
    assert _change(plan, Kind.SYSTEM, "HR").action is Action.UNCHANGED
    services.configuration.apply(CTX, document, expect=plan.fingerprint)
    ias_now = services.systems.get(CTX, "IAS")
    assert ias_now.properties["ips.delete.threshold.users"] == "80"
    assert "Type" not in ias_now.properties
    assert services.systems.effective_properties(CTX, "IAS")["Password"] == IAS_SECRET
    exported = services.configuration.export(CTX)
    assert next(s for s in exported["systems"] if s["name"] == "IAS")["properties"]["Type"] is None
    assert {c.action for c in services.configuration.plan(CTX, exported).changes} == {
        Action.UNCHANGED
    }


def test_transformation_and_schedule_changes(tested: Services, services: Services) -> None:
    document = tested.configuration.export(CTX)
    services.configuration.apply(CTX, document)
    document["systems"][1]["transformations"]["write"]["user"]["mappings"].pop()
    document["schedules"][0] = {"source": "HR", "enabled": False, "intervalMinutes": 120}
    plan = services.configuration.plan(CTX, document)
    assert _change(plan, Kind.TRANSFORMATION, "IAS write").detail == (
        "the document differs from version 1"
    )
    assert _change(plan, Kind.SCHEDULE, "HR").detail == (
        "every 60 minutes -> every 120 minutes (disabled)"
    )
    services.configuration.apply(CTX, document)
    assert services.systems.transformation(CTX, "IAS", "write").version == 2
    assert services.schedules.get(CTX, "HR").schedule.to_dict() == {
        "enabled": False,
        "intervalMinutes": 120,
    }


def test_a_new_url_drops_the_stored_credentials(tested: Services, services: Services) -> None:
    document = tested.configuration.export(CTX)
    services.configuration.apply(CTX, document)
    _fill_credentials(services)
    document["systems"][1]["properties"]["URL"] = "https://prod.accounts.ondemand.com"
    plan = services.configuration.plan(CTX, document)
    change = _change(plan, Kind.SYSTEM, "IAS")
    assert "the stored credentials Password are removed" in change.detail
    assert change.credentials == ("Password",)
    services.configuration.apply(CTX, document)
    assert "Password" not in services.systems.effective_properties(CTX, "IAS")
    assert services.systems.effective_properties(CTX, "HR")["Password"] == HR_SECRET


def test_nothing_is_deleted_without_prune(tested: Services, services: Services) -> None:
    document = tested.configuration.export(CTX)
    services.configuration.apply(CTX, document)
    _fill_credentials(services)
    old = services.systems.create(
        CTX, NewSystem(name="Old", type="local-identity-directory", role="source")
    )
    services.schedules.put(CTX, "Old", {"intervalMinutes": 45})
    services.systems.update(
        CTX, "IAS", SystemChanges(source_system_ids=[services.systems.get(CTX, "HR").id, old.id])
    )
    kept = services.configuration.plan(CTX, document)
    assert {c.action for c in kept.changes} == {Action.UNCHANGED}
    assert all("Old" not in c.name for c in kept.changes)
    services.configuration.apply(CTX, document)
    assert services.systems.get(CTX, "Old").id == old.id

    pruned = services.configuration.plan(CTX, document, prune=True)
    assert _by_action(pruned)[Action.DELETE] == [
        (Kind.LINK, "Old -> IAS"),
        (Kind.SCHEDULE, "Old"),
        (Kind.SYSTEM, "Old"),
    ]
    services.configuration.apply(CTX, document, prune=True, expect=pruned.fingerprint)
    names = [s.name for s in services.systems.all(CTX)[0]]
    assert sorted(names) == ["HR", "IAS"]
    assert [link.name for link in services.systems.get(CTX, "IAS").source_systems] == ["HR"]
    assert services.systems.effective_properties(CTX, "IAS")["Password"] == IAS_SECRET

    document["customSchemas"] = []
    plan = services.configuration.plan(CTX, document, prune=True)
    assert _change(plan, Kind.CUSTOM_SCHEMA, BADGE).action is Action.DELETE
    services.configuration.apply(CTX, document, prune=True)
    assert services.directory.schemas(CTX).schema(BADGE) is None


def test_a_custom_schema_is_replaced_only_with_prune(tested: Services, services: Services) -> None:
    document = tested.configuration.export(CTX)
    services.configuration.apply(CTX, document)
    document["customSchemas"][0]["attributes"].append({"name": "floor", "type": "integer"})
    with pytest.raises(InvalidDocumentError) as refused:
        services.configuration.plan(CTX, document)
    assert "plan with prune to replace it" in refused.value.message
    plan = services.configuration.plan(CTX, document, prune=True)
    change = _change(plan, Kind.CUSTOM_SCHEMA, BADGE)
    assert change.action is Action.UPDATE
    assert change.detail.startswith("replaced (attributes floor added)")
    services.configuration.apply(CTX, document, prune=True)
    schema = services.directory.schemas(CTX).schema(BADGE)
    assert schema is not None and schema.attribute("floor") is not None


def test_apply_refuses_a_plan_that_moved(tested: Services, services: Services) -> None:
    document = tested.configuration.export(CTX)
    plan = services.configuration.plan(CTX, document)
    services.systems.create(
        CTX, NewSystem(name="Meanwhile", type="local-identity-directory", role="source")
    )
    with pytest.raises(ConflictError, match="changed since the plan; plan again"):
        services.configuration.apply(CTX, document, expect=plan.fingerprint)
    assert [s.name for s in services.systems.all(CTX)[0]] == ["Meanwhile"]
    again = services.configuration.plan(CTX, document)
    assert again.fingerprint != plan.fingerprint
    services.configuration.apply(CTX, document, expect=again.fingerprint)


def test_every_problem_is_reported_at_once(tested: Services, services: Services) -> None:
    services.systems.create(
        CTX,
        NewSystem(
            name="IAS",
            type="identity-authentication",
            role="source",
            properties={"URL": "https://tenant.accounts.ondemand.com"},
        ),
    )
    document = tested.configuration.export(CTX)
    hr, ias = document["systems"]
    hr["properties"]["Password"] = "in the file"
    ias["transformations"]["write"] = {
        "user": {"mappings": [{"sourcePath": "$.[", "targetPath": 1}]}
    }
    ias["sourceSystems"].append("Nowhere")
    document["systems"].append({"name": "CRM", "type": "salesforce", "role": "target"})
    document["schedules"].append({"source": "HR", "intervalMinutes": 5})
    with pytest.raises(InvalidDocumentError) as refused:
        services.configuration.plan(CTX, document)
    problems = refused.value.problems
    assert any(p.startswith("systems[HR].properties.Password: a credential") for p in problems)
    assert any(p.startswith("systems[IAS].transformations.write: ") for p in problems)
    assert any(
        p.startswith("systems[CRM].type: unknown connector type 'salesforce'") for p in problems
    )
    assert any(p.startswith("schedules[HR]: a source has one schedule") for p in problems)
    assert any(
        "systems[IAS].role: IAS is a source system here; a system's role cannot be changed" in p
        for p in problems
    )
    assert any(
        p == "systems[IAS].sourceSystems: no system Nowhere in the document or in the tenant"
        for p in problems
    )
    with pytest.raises(InvalidDocumentError):
        services.configuration.apply(CTX, document)
    assert [s.name for s in services.systems.all(CTX)[0]] == ["IAS"]


def test_a_failing_change_says_what_was_applied(tested: Services, services: Services) -> None:
    services.systems.limits_of = lambda _tenant: Limits(target=1)
    document = tested.configuration.export(CTX)
    document["systems"].append(
        {
            "name": "LID",
            "type": "local-identity-directory",
            "role": "target",
            "sourceSystems": ["HR"],
        }
    )
    with pytest.raises(ConflictError) as failed:
        services.configuration.apply(CTX, document)
    message = failed.value.message
    assert 'while applying: + create system "LID"' in message
    assert 'Applied before: + create customSchema "' + BADGE in message
    assert '+ create system "IAS"' in message.split("Applied before:")[1].split("Not applied")[0]
    assert 'Not applied: + create system "LID"' in message


def test_bundles_set_up_an_empty_tenant(services: Services) -> None:
    names = [b.name for b in bundles()]
    assert names == ["directory-to-ldap-and-scim", "hr-to-identity-authentication"]
    hr = bundle("hr-to-identity-authentication")
    plan = services.configuration.plan(CTX, hr)
    assert {c.action for c in plan.changes} == {Action.CREATE}
    assert plan.credentials() == {"Identity Authentication": ["Password"]}
    services.configuration.apply(CTX, hr, expect=plan.fingerprint)
    assert {c.action for c in services.configuration.plan(CTX, hr).changes} == {Action.UNCHANGED}
    ias = services.systems.get(CTX, "Identity Authentication")
    assert [link.name for link in ias.source_systems] == ["Local Identity Directory Source"]
    assert services.schedules.get(CTX, "HR Employees").schedule.enabled is False

    ldap = bundle("directory-to-ldap-and-scim")
    switched = services.configuration.plan(CTX, ldap, prune=True)
    deleted = {name for kind, name in _by_action(switched)[Action.DELETE] if kind is Kind.SYSTEM}
    assert deleted == {"HR Employees", "Local Identity Directory", "Identity Authentication"}
    services.configuration.apply(CTX, ldap, prune=True)
    after = services.configuration.plan(CTX, ldap, prune=True)
    assert {c.action for c in after.changes} == {Action.UNCHANGED}
    assert after.credentials() == {
        "Corporate LDAP": ["ldap.password"],
        "SCIM Application": ["Password"],
    }


def test_from_tenant_to_tenant(tested: Services) -> None:
    """A tested setup of one tenant promoted to another tenant of the same installation; a
    tenant created from a bundle gets the bundle's systems."""
    operator = Context.administrator("operator")
    tested.tenants.create(operator, "production")
    production = Context.administrator("tester", tenant="production")
    document = tested.configuration.export(CTX)
    plan = tested.configuration.plan(production, document)
    assert {c.action for c in plan.changes} == {Action.CREATE}
    tested.configuration.apply(production, document, expect=plan.fingerprint)
    assert [s.name for s in tested.systems.all(production)[0]] == ["HR", "IAS"]
    assert "Password" not in tested.systems.effective_properties(production, "IAS")
    assert tested.systems.effective_properties(CTX, "IAS")["Password"] == IAS_SECRET
    assert {c.action for c in tested.configuration.plan(production, document).changes} == {
        Action.UNCHANGED
    }

    tested.tenants.create(operator, "branch", bundle="directory-to-ldap-and-scim")
    branch = Context.administrator("tester", tenant="branch")
    names = sorted(s.name for s in tested.systems.all(branch)[0])
    assert names == ["Corporate LDAP", "Local Identity Directory Source", "SCIM Application"]
    assert [s.name for s in tested.systems.all(CTX)[0]] == ["HR", "IAS"]
