"""attributes / excludedAttributes and the 'returned' characteristic."""

from __future__ import annotations

from provisor.scim import schemas as s
from provisor.scim.projection import Projection
from provisor.scim.registry import Registry

RT = Registry().user
DOC = {
    "schemas": [s.USER, s.ENTERPRISE_USER],
    "id": "1",
    "userName": "a",
    "name": {"givenName": "G", "familyName": "F"},
    "emails": [{"value": "a@x.org", "type": "work"}],
    s.ENTERPRISE_USER: {"department": "D", "division": "V"},
    "meta": {"resourceType": "User"},
}


def project(attributes: str | None = None, excluded: str | None = None) -> dict:
    return Projection.parse(RT, attributes, excluded).apply(DOC)


def test_default_returns_everything_but_never_returned() -> None:
    assert project() == DOC
    assert Projection.parse(RT, None, None).is_default


def test_attributes_select_with_always_returned() -> None:
    assert project("userName") == {"schemas": DOC["schemas"], "id": "1", "userName": "a"}
    assert project("NAME.givenName,emails.value")["name"] == {"givenName": "G"}
    assert project("emails.value")["emails"] == [{"value": "a@x.org"}]
    assert project(f"{s.ENTERPRISE_USER}:department")[s.ENTERPRISE_USER] == {"department": "D"}
    assert project(s.ENTERPRISE_USER)[s.ENTERPRISE_USER] == DOC[s.ENTERPRISE_USER]
    assert project("unknown,userName")["userName"] == "a"
    assert project(" , ") == DOC


def test_excluded_attributes() -> None:
    out = project(excluded="emails,name.familyName,id")
    assert "emails" not in out and out["name"] == {"givenName": "G"} and out["id"] == "1"
    assert s.ENTERPRISE_USER not in project(
        excluded=f"{s.ENTERPRISE_USER}:department,{s.ENTERPRISE_USER}:division"
    )


def test_wants() -> None:
    assert Projection.parse(RT, None, "groups").wants("groups") is False
    assert Projection.parse(RT, "userName", None).wants("groups") is False
    assert Projection.parse(RT, "groups.value", None).wants("groups") is True
