"""Reading a configuration document: every problem found at once, each with where it is."""

from __future__ import annotations

from typing import Any

from provisor.configuration.document import read
from provisor.configuration.model import Action, Change, Kind, Plan

BADGE = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Badge"


def _problems(data: Any) -> list[str]:
    return read(data, {})[1]


def test_a_valid_document() -> None:
    document, problems = read(
        {
            "provisorConfiguration": 1,
            "systems": [
                {
                    "name": "HR",
                    "type": "SCIM System",
                    "role": "source",
                    "properties": {"URL": "https://hr.example.com/scim", "Type": None},
                    "credentialKeys": ["Password"],
                },
                {
                    "name": "LID",
                    "type": "local-identity-directory",
                    "role": "target",
                    "sourceSystems": ["HR", "HR"],
                },
            ],
            "schedules": [{"source": "HR", "daysOfWeek": ["mon"], "time": "02:30"}],
            "customSchemas": [
                {
                    "id": BADGE,
                    "attributes": [{"name": "badgeId", "type": "string"}],
                    "meta": {"location": "elsewhere"},
                }
            ],
        },
        {},
    )
    assert problems == []
    hr, lid = document.systems
    assert hr.type.id == "scim" and hr.credential_keys == ("Password",)
    assert hr.properties["Authentication"] == "BasicAuthentication"  # seeded
    assert "Type" not in hr.properties and hr.removed == {"Type"}
    assert lid.sources == ("HR",)
    assert document.schedules[0].normal == {
        "enabled": True,
        "daysOfWeek": ["MON"],
        "time": "02:30",
        "timeZone": "UTC",
    }
    assert "meta" not in document.schemas[0].body
    assert document.schemas[0].normal["attributes"][0]["uniqueness"] == "none"


def test_every_problem_at_once() -> None:
    problems = _problems(
        {
            "provisorConfiguration": 2,
            "tenant": "x",
            "systems": [
                {
                    "name": "HR",
                    "type": "scim",
                    "role": "source",
                    "colour": "red",
                    "properties": {"URL": "ftp://hr", "Password": "oops", "scim.pagesize": "9"},
                    "sourceSystems": ["LID"],
                    "transformations": {"write": {}, "read": {"user": {"mappings": 3}}},
                },
                {"name": "hr", "type": "scim", "role": "source"},
                {"name": "bad/name", "type": "scim", "role": "target"},
                {"name": "AD", "type": "microsoft-ad", "role": "owner"},
                {"name": "Files", "type": "csv", "role": "proxy"},
                {
                    "name": "Out",
                    "type": "csv",
                    "role": "target",
                    "enabled": "yes",
                    "properties": {"csv.user.file": "../etc/passwd"},
                },
            ],
            "schedules": [{"source": "HR", "intervalMinutes": 40}, {"source": "hr"}, {}],
            "customSchemas": [{"id": "Badge"}],
        }
    )
    assert problems[:2] == [
        "provisorConfiguration: 1 is required (the format's version), not 2",
        "unknown field(s) tenant; a document has bundle, customSchemas, exported, product, "
        "provisorConfiguration, schedules, systems",
    ]
    expected = [
        "systems[HR]: unknown field(s) colour",
        "systems[HR].properties.Password: a credential; credentials are never in a "
        "configuration document",
        "systems[HR].properties.URL: a URL starting with http:// or https://, not 'ftp://hr'",
        "systems[HR].properties.scim.pagesize: unknown property of SCIM System",
        "systems[HR].sourceSystems: only target systems have source systems",
        "systems[HR].transformations.write: a source system has a read transformation only",
        "systems[HR].transformations.read: ",
        "systems[hr]: named twice",
        "systems[2].name: a system name has",
        "systems[AD].role: one of source, target, proxy, not 'owner'",
        "systems[Files].role: a CSV File system can be a source, target system, not a proxy",
        "systems[Out].enabled: true or false",
        "systems[Out].properties.csv.user.file: a path may not climb out of its folder",
        "schedules[hr]: a source has one schedule",
        "schedules[2]: a schedule is an object with source",
        "customSchemas[Badge]: Invalid schema: id: required, a URN",
    ]
    for fragment in expected:
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
    assert len(problems) == 2 + len(expected)


def test_other_documents_are_named() -> None:
    assert _problems([]) == [
        "the document is a JSON object with provisorConfiguration, systems, schedules and "
        "customSchemas"
    ]
    assert _problems({"provisorExport": 1, "name": "HR"})[0].startswith(
        "provisorExport: this is the export of one system, not a configuration"
    )
    assert _problems({"provisorConfiguration": 1, "systems": {}}) == ["systems: a list"]


def test_plan_lines_and_counts() -> None:
    changes = (
        Change(
            action=Action.CREATE,
            kind=Kind.SYSTEM,
            name="HR",
            detail="SCIM System source",
            credentials=("Password",),
        ),
        Change(action=Action.UPDATE, kind=Kind.SYSTEM, name="IAS", detail="properties URL changed"),
        Change(action=Action.DELETE, kind=Kind.SCHEDULE, name="Old"),
        Change(action=Action.UNCHANGED, kind=Kind.LINK, name="HR -> IAS"),
    )
    plan = Plan(changes=changes, fingerprint="f" * 64)
    assert [c.line() for c in changes] == [
        '+ create system "HR": SCIM System source',
        '~ update system "IAS": properties URL changed',
        '- delete schedule "Old"',
        '= unchanged link "HR -> IAS"',
    ]
    assert plan.counts() == {"create": 1, "update": 1, "delete": 1, "unchanged": 1}
    assert plan.credentials() == {"HR": ["Password"]}
    assert len(plan.pending) == 3
    assert changes[0].to_dict()["credentialsToEnter"] == ["Password"]
