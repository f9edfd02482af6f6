"""Jayway JSONPath: reading (definite and indefinite paths) and SAP's target-side writing."""

from __future__ import annotations

from typing import Any

import pytest

from provisor.transform.grammar import ExpressionSyntaxError, parse_path
from provisor.transform.jsonpath import MISSING, Env, Writer, compile_reader

ENV = Env(variables={}, properties={})
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DOC: dict[str, Any] = {
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True, "display": "B"},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    ENTERPRISE: {"manager": {"value": "26118915"}, "department": "Tour"},
    "groups": [{"display": "ABC-1"}, {"display": "XYZ"}],
    "sn": ["Jensen"],
    "nested": {"a": {"value": 1}, "b": [{"value": 2}]},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.userName", "bjensen"),
        ("$.name.givenName", "Barbara"),
        ("$['name']['familyName']", "Jensen"),
        ('$["name"]["familyName"]', "Jensen"),
        (f"$['{ENTERPRISE}']['manager']['value']", "26118915"),
        ("$.emails[0].value", "bjensen@example.com"),
        ("$.emails[-1].type", "home"),
        ("$.sn[0]", "Jensen"),
        ("$.emails[5].value", MISSING),
        ("$.nope.deeper", MISSING),
        ("$.userName.length()", 7),
        ("$.emails.length()", 2),
        ("$.emails[0].length()", 4),
        ("$", DOC),
    ],
)
def test_definite_paths(path: str, expected: Any) -> None:
    assert compile_reader(path)(DOC, None, ENV) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.emails[?(@.primary== true)].value", ["bjensen@example.com"]),
        ("$.emails[?(@.primary == false)].value", []),
        ("$.emails[*].value", ["bjensen@example.com", "babs@jensen.org"]),
        ("$.emails[*].type", ["work", "home"]),
        ("$.groups[?(@.display =~ /ABC.*/)]", [{"display": "ABC-1"}]),
        (
            "$.emails[*].['value','display']",
            [{"value": "bjensen@example.com", "display": "B"}, {"value": "babs@jensen.org"}],
        ),
        ("$.emails[0,1].type", ["work", "home"]),
        ("$.emails[:1].type", ["work"]),
        ("$.emails[1:].type", ["home"]),
        ("$.nested..value", [1, 2]),
        ("$.emails[?(@.type IN ['home'])].value", ["babs@jensen.org"]),
        ("$.emails[?(@.primary)].value", ["bjensen@example.com"]),
        ("$.nothing[*]", []),
    ],
)
def test_indefinite_paths_return_lists(path: str, expected: Any) -> None:
    assert compile_reader(path)(DOC, None, ENV) == expected


def test_current_element_paths() -> None:
    assert compile_reader("@.type")(DOC, {"type": "work"}, ENV) == "work"


@pytest.mark.parametrize("bad", ["", "userName", "$.", "$[", "$.a[?(@.b ==)]", "$.a..", "$.a.b("])
def test_invalid_paths(bad: str) -> None:
    with pytest.raises(ExpressionSyntaxError):
        parse_path(bad)


def write(*pairs: tuple[str, Any], start: dict[str, Any] | None = None) -> dict[str, Any]:
    output: dict[str, Any] = start if start is not None else {}
    for path, value in pairs:
        Writer(path).write(output, value, ENV)
    return output


def test_writing_creates_what_is_missing() -> None:
    assert write(("$.schemas[0]", "urn:a"), ("$.schemas[1]", "urn:b")) == {
        "schemas": ["urn:a", "urn:b"]
    }
    assert write(("$.emails[0].type", "work")) == {"emails": [{"type": "work"}]}
    assert write((f"$['{ENTERPRISE}']['manager']['value']", "m")) == {
        ENTERPRISE: {"manager": {"value": "m"}}
    }
    assert write(("$.phoneNumbers[1].value", "+1")) == {"phoneNumbers": [{}, {"value": "+1"}]}
    assert write(("$", {"a": 1}), start={"b": 2}) == {"a": 1}


def test_object_form_builds_and_extends_an_array() -> None:
    out = write(
        ("$.emails[?(@.value)]", ["a@x", "b@x"]),
        ("$.emails[?(@.value)]", "c@x"),
        ("$.emails[?(@.value)]", ["a@x"]),
    )
    assert out == {"emails": [{"value": "a@x"}, {"value": "b@x"}, {"value": "c@x"}]}
    assert write(("$.countryList[?(@.name)]", ["DE", "FR"])) == {
        "countryList": [{"name": "DE"}, {"name": "FR"}]
    }


def test_writing_through_filters_and_wildcards() -> None:
    start = {"emails": [{"value": "a", "type": "work"}, {"value": "b", "type": "home"}]}
    out = write(("$.emails[?(@.type == 'home')].primary", True), start=start)
    assert out["emails"][1] == {"value": "b", "type": "home", "primary": True}
    out = write(("$.emails[*].display", "x"), start=out)
    assert all(e["display"] == "x" for e in out["emails"])
    seeded = write(("$.addresses[?(@.type == 'work')].country", "DE"))
    assert seeded == {"addresses": [{"type": "work", "country": "DE"}]}


def test_remove_and_rename() -> None:
    out = {
        "a": {"b": 1, "c": 2},
        "emails": [{"value": "x", "type": "t"}, {"value": "y"}],
        "ext": {"k": 1},
    }
    Writer("$.emails[*].type").remove(out, ENV)
    Writer("$.a.b").remove(out, ENV)
    Writer("$['ext']").remove(out, ENV)
    Writer("$.absent.path").remove(out, ENV)
    assert out == {"a": {"c": 2}, "emails": [{"value": "x"}, {"value": "y"}]}
    Writer("$.emails[?(@.value == 'y')]").remove(out, ENV)
    assert out["emails"] == [{"value": "x"}]
    Writer("$.a.c").rename(out, "d", ENV)
    assert out["a"] == {"d": 2}
    Writer("$.emails[*].value").rename(out, "address", ENV)
    assert out["emails"] == [{"address": "x"}]
