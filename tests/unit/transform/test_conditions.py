"""Conditions (spec §1.5): every operator, SAP's functions, and the defaults' examples."""

from __future__ import annotations

from typing import Any

import pytest

from provisor.transform.conditions import compile_condition
from provisor.transform.grammar import ExpressionSyntaxError
from provisor.transform.jsonpath import Env

SAP_GROUP = "urn:ietf:params:scim:schemas:extension:sap:2.0:Group"
USER: dict[str, Any] = {
    "userName": "bjensen",
    "name": {"familyName": "Jensen", "honorificPrefix": "Dr."},
    "emails": [{"value": "bjensen@example.com", "type": "work"}, {"value": "x@y.org"}],
    "groups": [{"display": "ABC-admins"}, {"display": "XYZ"}],
    "validityPeriod": {"startDate": "2024-01-01", "endDate": "2030-01-01"},
    "displayName": "S4_Team",
    "count": 3,
    "zero": "0",
    "empty": "",
    "nothing": None,
    "list": [],
}
ENV = Env(
    variables={"currentDate": "2026-11-24 10:00:00.000", "kind": "createEntity"},
    properties={
        "c4c.group.prefix": "ABC",
        "s4hana.afc.group.prefix": "S4_",
        "ips.application.id": "app-1",
    },
)


def holds(text: str, doc: Any = USER, current: Any = None) -> bool:
    return compile_condition(text)(doc, current, ENV)


@pytest.mark.parametrize(
    "text",
    [
        "($.emails EMPTY false) && ($.userName EMPTY false) && isValidEmail($.emails[0].value)",
        "($.emails.length() > 0) && ($.name.familyName EMPTY false)",
        "($.validityPeriod.startDate <= '${currentDate}') && ($.validityPeriod.endDate > "
        "'${currentDate}')",
        "$.groups EMPTY true || $.groups[?(@.display === 'QQQ' )] empty true",
        "(('ABC' === 'null') || ($.groups[?(@.display =~ /ABC.*/)] empty false))",
        "$.name.honorificPrefix IN ['Mr.', 'Mrs.', 'Ms.', 'Dr.']",
        "!($.emails[0].value =~ /.*contractorsCompany.com/)",
        "isAttributeWithOptionalPrefix($.displayName, s4hana.afc.group.prefix)",
        "isAttributeWithOptionalPrefix($.missing, s4hana.afc.group.prefix)",
        "isAttributeWithOptionalPrefix($.userName, unknown.property)",
        "isAttributeWithMandatoryPrefix($.displayName, s4hana.afc.group.prefix)",
        "$.emails[?(@.type == 'none')].value == []",
        "$.emails[?(@.type == 'work')].value != []",
        "$.count == 3 && $.count === 3 && $.count >= 3 && $.count < 4 && $.count != 4",
        "$.zero == 0 && $.zero !== 0",
        "'${kind}' == 'createEntity'",
        "$.empty EMPTY true && $.nothing EMPTY true && $.list EMPTY TRUE && $.missing EMPTY true",
        "$.missing != 'x' && !($.missing == 'x')",
        "$.missing NIN ['x']",
        "$.userName contains 'jen'",
        "$.emails[*].type contains 'work'",
        "$.userName =~ /(?i)BJENSEN/",
        "$.userName =~ /BJENSEN/i",
        "isRegularGroup()",
        "$.userName",
        "!$.missing",
        "$.userName > 'a' && $.userName < 'c'",
    ],
)
def test_true_conditions(text: str) -> None:
    assert holds(text), text


@pytest.mark.parametrize(
    "text",
    [
        "$.userName EMPTY true",
        "$.groups EMPTY true || $.groups[?(@.display === 'XYZ' )] empty true",
        "isValidEmail($.emails[*].value) && $.emails[1].value == 'x'",
        "isValidEmail($.userName)",
        "isValidEmail($.missing)",
        "isAttributeWithMandatoryPrefix($.userName, s4hana.afc.group.prefix)",
        "isAttributeWithMandatoryPrefix($.missing, s4hana.afc.group.prefix)",
        "$.name.honorificPrefix NIN ['Dr.']",
        "$.userName =~ /jensen/",
        "$.count > 'abc'",
        "$.missing == null",
        "$.missing < 1",
        "isApplicationSpecificGroup()",
        "$.count === '3'",
        "true == 'true'",
    ],
)
def test_false_conditions(text: str) -> None:
    assert not holds(text), text


def test_sap_group_functions() -> None:
    group = {SAP_GROUP: {"applicationId": "app-1", "supportedOperations": "readWrite"}}
    assert holds("isApplicationSpecificGroup()", group)
    assert not holds("isRegularGroup()", group)
    assert holds("isRegularGroup()", {SAP_GROUP: {"applicationId": "app-1"}})


def test_current_element() -> None:
    assert holds("(@.type NIN ['work', 'home'])", current={"type": "other"})
    assert not holds("(@.type NIN ['work', 'home'])", current={"type": "work"})


def test_variables_in_regex() -> None:
    env = Env(variables={"prefix": "AB"}, properties={})
    assert compile_condition("$.userName =~ /${prefix}.*/")({"userName": "ABC"}, None, env)
    assert not compile_condition("$.userName =~ /${prefix}.*/")({"userName": "X"}, None, env)


@pytest.mark.parametrize(
    "bad",
    [
        "$.a ==",
        "&& $.a",
        "$.a EMPTY maybe",
        "$.a IN 'x'",
        "unknownFunction($.a)",
        "isValidEmail()",
        "isRegularGroup($.a)",
        "$.a =~ /(unclosed/",
        "($.a == 1",
        "",
    ],
)
def test_invalid_conditions(bad: str) -> None:
    with pytest.raises((ExpressionSyntaxError, ValueError)):
        compile_condition(bad)
