"""Checking resource bodies against their schemas."""

from __future__ import annotations

import pytest

from provisor.scim import schemas as s
from provisor.scim.errors import InvalidSyntaxError, InvalidValueError, MutabilityError
from provisor.scim.registry import Registry
from provisor.scim.values import ResourceChecker
from provisor.timestamps import format_datetime, parse_datetime

REGISTRY = Registry()
USERS = ResourceChecker(REGISTRY.user)
GROUPS = ResourceChecker(REGISTRY.group)


def test_normalises_names_types_and_drops_read_only() -> None:
    doc = USERS.check(
        {
            "schemas": [s.USER],
            "USERNAME": "a",
            "Active": "true",
            "id": "ignored",
            "groups": [{"value": "ignored"}],
            "nickName": None,
            "emails": {"value": "single@x.org"},  # one value where a list is expected
            s.ENTERPRISE_USER: {"manager": {"value": "m", "displayName": "ignored"}},
        }
    )
    assert doc == {
        "schemas": [s.USER, s.ENTERPRISE_USER],
        "userName": "a",
        "active": True,
        "emails": [{"value": "single@x.org"}],
        s.ENTERPRISE_USER: {"manager": {"value": "m"}},
    }


@pytest.mark.parametrize(
    "body",
    [
        {"userName": 1},
        {"userName": "a", "active": "yes"},
        {"userName": "a", "name": "not complex"},
        {"userName": "a", "name": {"nope": "x"}},
        {"userName": "a", "name": {"givenName": ["x"]}},
        {"userName": "a", "title": ["x"]},
        {"userName": "a", "x509Certificates": [{"value": "not base64!"}]},
        {"userName": "a", s.SAP_USER: {"sourceSystem": "39"}},
        {"userName": "a", s.SAP_USER: "not an object"},
        {"userName": "a", "unknownAttribute": 1},
        {"userName": "a", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]},
        {},
    ],
)
def test_rejects_invalid_values(body: dict) -> None:
    with pytest.raises(InvalidValueError):
        USERS.check(body)


def test_rejects_non_objects_and_bad_schemas() -> None:
    with pytest.raises(InvalidSyntaxError):
        USERS.check([])
    with pytest.raises(InvalidSyntaxError):
        USERS.check({"schemas": "urn:x", "userName": "a"})


def test_immutable_and_read_only_on_replace() -> None:
    existing = {
        "schemas": [s.USER, s.SAP_USER],
        "userName": "a",
        s.SAP_USER: {"userUuid": "u-1", "sourceSystem": 39},
    }
    kept = USERS.check({"userName": "b"}, existing=existing)
    assert kept[s.SAP_USER] == {"userUuid": "u-1"}  # read-only values survive a PUT
    assert kept["schemas"] == [s.USER, s.SAP_USER]
    group_before = {"schemas": [s.GROUP], "displayName": "g"}
    assert GROUPS.check({"displayName": "h"}, existing=group_before)["displayName"] == "h"


def test_immutable_value_cannot_change() -> None:
    from dataclasses import replace

    from provisor.scim.attributes import Mutability, Schema, string

    schema = Schema(
        id="urn:test:Thing",
        name="Thing",
        attributes=(string("code", mutability=Mutability.IMMUTABLE),),
    )
    rt = replace(REGISTRY.user, extensions=(schema,))
    checker = ResourceChecker(rt)
    existing = {"schemas": [s.USER, schema.id], "userName": "a", schema.id: {"code": "A"}}
    assert checker.check({"userName": "a"}, existing=existing)[schema.id] == {"code": "A"}
    with pytest.raises(MutabilityError):
        checker.check({"userName": "a", schema.id: {"code": "B"}}, existing=existing)


def test_datetimes_are_normalised_to_utc() -> None:
    assert format_datetime(parse_datetime("2024-05-01T10:00:00+02:00")) == (
        "2024-05-01T08:00:00.000000Z"
    )
    assert format_datetime(parse_datetime("0512-01-01T00:00:00Z")) == "0512-01-01T00:00:00.000000Z"
    assert format_datetime(parse_datetime("2024-05-01T10:00:00")) == "2024-05-01T10:00:00.000000Z"
