"""PATCH (RFC 7644 §3.5.2) on documents, including the forms Microsoft Entra sends."""

from __future__ import annotations

from typing import Any

import pytest

from provisor.scim import schemas as s
from provisor.scim.errors import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
)
from provisor.scim.members import MemberAction, split_members
from provisor.scim.patch import Operation, Patcher, parse_patch_request
from provisor.scim.registry import Registry

REGISTRY = Registry()
USERS = Patcher(REGISTRY.user)


def user(**extra: Any) -> dict[str, Any]:
    return {
        "schemas": [s.USER],
        "id": "1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        **extra,
    }


def apply(doc: dict[str, Any], *ops: tuple[str, str | None, Any]) -> dict[str, Any]:
    return USERS.apply(doc, [Operation(op, path, value) for op, path, value in ops])


def test_parse_patch_request() -> None:
    ops = parse_patch_request(
        {
            "schemas": [s.PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": " title ", "value": "x"},
                {"op": "remove", "path": "title"},
            ],
        }
    )
    assert ops == [Operation("replace", "title", "x"), Operation("remove", "title", None)]
    for bad in [
        [],
        {"Operations": []},
        {"schemas": [s.PATCH_OP], "Operations": []},
        {"schemas": [s.PATCH_OP], "Operations": [{"op": "move"}]},
        {"schemas": [s.PATCH_OP], "Operations": ["add"]},
    ]:
        with pytest.raises(InvalidSyntaxError):
            parse_patch_request(bad)
    with pytest.raises(InvalidValueError):
        parse_patch_request({"schemas": [s.PATCH_OP], "Operations": [{"op": "add", "path": "x"}]})


def test_add_and_replace_simple_and_complex() -> None:
    doc = apply(user(), ("add", "title", "Tour Guide"), ("replace", "name.givenName", "Babs"))
    assert doc["title"] == "Tour Guide"
    assert doc["name"] == {"givenName": "Babs", "familyName": "Jensen"}
    merged = apply(user(), ("replace", "name", {"middleName": "Jane"}))
    assert merged["name"] == {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"}


def test_add_to_multi_valued_appends_and_moves_primary() -> None:
    doc = apply(user(), ("add", "emails", [{"value": "new@x.org", "primary": True}]))
    assert [e["value"] for e in doc["emails"]][-1] == "new@x.org"
    assert [e.get("primary") for e in doc["emails"]] == [False, None, True]
    again = apply(doc, ("add", "emails", [{"value": "new@x.org", "primary": True}]))
    assert len(again["emails"]) == 3  # the same value is not added twice


def test_replace_multi_valued_replaces_all() -> None:
    doc = apply(user(), ("replace", "emails", [{"value": "only@x.org"}]))
    assert doc["emails"] == [{"value": "only@x.org"}]


def test_value_filter_paths() -> None:
    doc = apply(user(), ("replace", 'emails[type eq "work"].value', "work@x.org"))
    assert doc["emails"][0] == {"value": "work@x.org", "type": "work", "primary": True}
    doc = apply(user(), ("replace", 'emails[type eq "home"]', {"value": "h@x.org", "type": "home"}))
    assert doc["emails"][1] == {"value": "h@x.org", "type": "home"}
    doc = apply(user(), ("remove", 'emails[type eq "home"]', None))
    assert [e["type"] for e in doc["emails"]] == ["work"]
    doc = apply(user(), ("remove", 'emails[type eq "work"].primary', None))
    assert doc["emails"][0] == {"value": "bjensen@example.com", "type": "work"}
    # Entra adds a value that matches nothing yet: it is created from the filter
    doc = apply(user(), ("add", 'phoneNumbers[type eq "mobile"].value', "+49 1"))
    assert doc["phoneNumbers"] == [{"type": "mobile", "value": "+49 1"}]
    with pytest.raises(NoTargetError):
        apply(user(), ("replace", 'emails[value co "nothing"].type', "other"))
    with pytest.raises(InvalidPathError):
        apply(user(), ("replace", 'title[value eq "x"]', "y"))


def test_remove() -> None:
    doc = apply(user(title="x"), ("remove", "title", None), ("remove", "name.givenName", None))
    assert "title" not in doc and doc["name"] == {"familyName": "Jensen"}
    doc = apply(user(), ("remove", "emails", [{"value": "babs@jensen.org"}]))  # Entra form
    assert [e["value"] for e in doc["emails"]] == ["bjensen@example.com"]
    doc = apply(user(), ("remove", "emails.type", None))
    assert all("type" not in e for e in doc["emails"])
    assert apply(user(), ("remove", "nickName", None)) == user()  # nothing to remove
    with pytest.raises(NoTargetError):
        apply(user(), ("remove", None, None))


def test_pathless_forms() -> None:
    doc = apply(
        user(),
        (
            "replace",
            None,
            {
                "displayName": "Babs",
                "name.familyName": "J.",  # Entra
                f"{s.ENTERPRISE_USER}:department": "Sales",  # Entra
                s.ENTERPRISE_USER: {"costCenter": "42"},
                "active": "False",  # left for the type check, which turns it into False
            },
        ),
    )
    assert doc["displayName"] == "Babs" and doc["name"]["familyName"] == "J."
    assert doc[s.ENTERPRISE_USER] == {"department": "Sales", "costCenter": "42"}
    assert doc["schemas"] == [s.USER, s.ENTERPRISE_USER]
    with pytest.raises(InvalidValueError):
        apply(user(), ("add", None, "not an object"))


def test_extension_paths() -> None:
    doc = apply(user(), ("add", f"{s.ENTERPRISE_USER}:manager.value", "boss"))
    assert doc[s.ENTERPRISE_USER] == {"manager": {"value": "boss"}}
    doc = apply(doc, ("remove", f"{s.ENTERPRISE_USER}:manager", None))
    assert s.ENTERPRISE_USER not in doc and doc["schemas"] == [s.USER]
    doc = apply(user(), ("add", s.ENTERPRISE_USER, {"schemas": ["x"], "division": "D"}))
    assert doc[s.ENTERPRISE_USER] == {"division": "D"}


def test_read_only_and_unknown_targets() -> None:
    with pytest.raises(MutabilityError):
        apply(user(), ("replace", "id", "2"))
    with pytest.raises(MutabilityError):
        apply(user(), ("add", "groups", [{"value": "g"}]))
    with pytest.raises(InvalidPathError):
        apply(user(), ("add", "shoeSize", 42))
    with pytest.raises(InvalidPathError):
        apply(user(), ("add", "urn:unknown:schema:attr", 1))
    with pytest.raises(InvalidPathError):
        apply(user(), ("add", 'emails[type eq "work"', 1))


def test_members_are_split_from_document_operations() -> None:
    ops = parse_patch_request(
        {
            "schemas": [s.PATCH_OP],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": "u1", "type": "User"}]},
                {"op": "remove", "path": 'members[value eq "u2"]'},
                {"op": "remove", "path": "members", "value": [{"value": "u3"}]},
                {"op": "remove", "path": "members"},
                {"op": "replace", "value": {"displayName": "G", "members": [{"value": "u4"}]}},
            ],
        }
    )
    doc_ops, changes = split_members(ops)
    assert doc_ops == [Operation("replace", None, {"displayName": "G"})]
    assert [c.action for c in changes] == [
        MemberAction.ADD,
        MemberAction.REMOVE_MATCHING,
        MemberAction.REMOVE,
        MemberAction.REMOVE_ALL,
        MemberAction.REPLACE,
    ]
    assert changes[0].members[0].type == "User"
    with pytest.raises(MutabilityError):
        split_members([Operation("replace", 'members[value eq "u1"].value', "x")])
    with pytest.raises(InvalidValueError):
        split_members([Operation("add", "members", [{"value": "u1", "type": "Robot"}])])
