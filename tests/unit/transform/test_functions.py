"""Each mapping function of spec §1.6, with its edge cases."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from provisor.transform import Failed, Transformation, Transformed
from provisor.transform.functions import FUNCTIONS


class Resolver:
    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.calls: list[tuple[list[str], str]] = []

    def resolve(
        self,
        ids: Sequence[str],
        *,
        entity_type: str,
        source_system: str | None,
        target_system: str | None,
    ) -> dict[str, str]:
        self.calls.append((list(ids), entity_type))
        return {i: self.known[i] for i in ids if i in self.known}


def run(
    functions: list[dict[str, Any]],
    value: Any = None,
    *,
    source: Any = None,
    variables: dict[str, Any] | None = None,
    resolver: Any = None,
    preserve: bool = True,
    **mapping: Any,
) -> Any:
    """Apply functions to a constant (or to a source path) and return the written value."""
    spec: dict[str, Any] = {
        "targetPath": "$.out",
        "functions": functions,
        "preserveArrayWithSingleElement": preserve,
        **mapping,
    }
    if "sourcePath" not in spec and not any(f.get("type") == "randomPassword" for f in functions):
        spec["constant"] = value
    doc = {"user": {"mappings": [spec]}}
    outcome = Transformation(doc, {"tenant": "acme"}).apply(
        "user", source if source is not None else {}, variables=variables, resolver=resolver
    )
    if isinstance(outcome, Failed):
        raise AssertionError(outcome.reason)
    assert isinstance(outcome, Transformed)
    return outcome.document.get("out")


def fails(functions: list[dict[str, Any]], value: Any) -> str:
    doc = {
        "user": {"mappings": [{"constant": value, "targetPath": "$.out", "functions": functions}]}
    }
    outcome = Transformation(doc).apply("user", {})
    assert isinstance(outcome, Failed)
    return outcome.reason


def test_every_function_of_the_spec_is_known() -> None:
    assert set(FUNCTIONS) == {
        "concatString",
        "compositeId",
        "convertCountryCode",
        "convertCountryRegion",
        "convertLocaleCode",
        "convertTimezoneCode",
        "copyMapEntry",
        "renameMapEntry",
        "decode",
        "encode",
        "toString",
        "elementAt",
        "getMatchedRegexGroup",
        "matchRegex",
        "manipulateDate",
        "putIfAbsent",
        "putIfPresent",
        "randomPassword",
        "replaceString",
        "replaceFirstString",
        "replaceLastString",
        "replaceAllString",
        "resolveEntityIds",
        "splitStringToArray",
        "substring",
        "toUpperCaseString",
        "toLowerCaseString",
    }


def test_concat_and_composite() -> None:
    assert run([{"type": "concatString", "prefix": "pre-", "suffix": "-%tenant%"}], "x") == (
        "pre-x-acme"
    )
    assert (
        run([{"function": "concatString", "suffix": "${id}"}], "base/", variables={"id": "42"})
        == "base/42"
    )
    assert (
        run(
            [{"type": "concatString", "prefix": "$.name", "suffix": ":"}],
            "",
            source={"name": "app"},
        )
        == "app:"
    )
    assert run([{"type": "concatString", "prefix": 1, "suffix": True}], "") == "1true"
    assert (
        run(
            [{"type": "compositeId", "separator": ":", "subId": "$.employee"}],
            "johnsmith",
            source={"employee": "e0123456"},
        )
        == "johnsmith:e0123456"
    )


def test_case_substring_replace() -> None:
    assert run([{"type": "toUpperCaseString"}], "abc") == "ABC"
    assert run([{"type": "toLowerCaseString", "locale": "de_DE"}], "ÄBC") == "äbc"
    assert run([{"type": "substring", "beginIndex": 1, "endIndex": 3}], "hello") == "el"
    assert run([{"type": "substring", "beginIndex": "2"}], "hello") == "llo"
    assert "out of range" in fails([{"type": "substring", "beginIndex": 3, "endIndex": 9}], "ab")
    assert run([{"type": "replaceString", "target": ".", "replacement": "_"}], "a.b.c") == "a_b_c"
    assert (
        run(
            [{"type": "replaceAllString", "regex": "[\\s\\p{Punct}]", "replacement": "_"}],
            "Sales & Marketing (EU)",
        )
        == "Sales___Marketing__EU_"
    )
    assert run([{"type": "replaceFirstString", "regex": "a", "replacement": "A"}], "aaa") == "Aaa"
    assert run([{"type": "replaceLastString", "regex": "a", "replacement": "A"}], "aaa") == "aaA"
    assert (
        run(
            [{"type": "replaceAllString", "regex": "(\\w+)@(\\w+)", "replacement": "$2\\$$1"}],
            "joe@sap",
        )
        == "sap$joe"
    )
    assert run([{"type": "replaceAllString", "regex": "0", "replacement": 1}], "100") == "111"


def test_regex_functions() -> None:
    group = [{"type": "getMatchedRegexGroup", "regex": "(?i)cn=.*?,(.*?)", "groupIndex": 1}]
    assert run(group, "CN=John,OU=Users,DC=corp") == "OU=Users,DC=corp"
    assert (
        run([{"type": "getMatchedRegexGroup", "regex": "(\\d+)", "groupIndex": 0}], "abc123def")
        == "123"
    )
    assert (
        run(
            [{"type": "getMatchedRegexGroup", "regex": "(\\d+)", "groupIndex": 1}],
            "none",
            optional=True,
        )
        is None
    )
    assert run([{"type": "matchRegex", "regex": "[a-z]+"}], "abc") is True
    assert run([{"type": "matchRegex", "regex": "[a-z]+"}], "abc1") is False


def test_split_and_element_at() -> None:
    assert run([{"type": "splitStringToArray", "separator": ","}], "a,b,,c,,") == [
        "a",
        "b",
        "",
        "c",
    ]
    assert run([{"type": "splitStringToArray", "separator": "\\|"}], "a|b") == ["a", "b"]
    out = run([{"type": "splitStringToArray", "separator": ";"}], "DE;FR", preserve=True)
    assert out == ["DE", "FR"]
    assert run([{"type": "elementAt", "index": 1}], ["a", "b"]) == "b"
    assert run([{"type": "elementAt", "index": -1}], ["a", "b"]) == "b"
    assert run([{"type": "elementAt", "index": 5}], ["a"], optional=True) is None


def test_split_into_objects() -> None:
    doc = {
        "user": {
            "mappings": [
                {
                    "constant": "DE,FR",
                    "targetPath": "$.countryList[?(@.name)]",
                    "functions": [{"type": "splitStringToArray", "separator": ","}],
                }
            ]
        }
    }
    outcome = Transformation(doc).apply("user", {})
    assert isinstance(outcome, Transformed)
    assert outcome.document == {"countryList": [{"name": "DE"}, {"name": "FR"}]}


def test_encode_decode_to_string() -> None:
    assert run([{"type": "encode", "algorithm": "base32", "skipPadding": True}], "USER_A") == (
        "KVJUKUS7IE"
    )
    assert run([{"type": "encode", "algorithm": "base64"}], "abc") == "YWJj"
    assert (
        run([{"type": "decode", "algorithm": "base32"}, {"type": "toString"}], "KVJUKUS7IE")
        == "USER_A"
    )
    assert run([{"type": "decode", "algorithm": "base64"}, {"type": "toString"}], "YWJj") == "abc"
    assert "not valid base64" in fails([{"type": "decode", "algorithm": "base64"}], "!!")
    assert run([{"type": "toString"}], 42) == "42"
    assert run([{"type": "toString"}], False) == "false"


def test_map_entries() -> None:
    addresses = [{"type": "work", "country": "DE"}, {"type": "other"}, {"country": "US"}]
    assert run(
        [
            {"type": "putIfAbsent", "key": "type", "defaultValue": "work"},
            {
                "type": "putIfPresent",
                "key": "type",
                "defaultValue": "work",
                "condition": "(@.type NIN ['work', 'home'])",
            },
        ],
        addresses,
    ) == [{"type": "work", "country": "DE"}, {"type": "work"}, {"country": "US", "type": "work"}]
    assert run(
        [{"type": "copyMapEntry", "sourceKey": "value", "targetKey": "display"}], [{"value": "a"}]
    ) == [{"value": "a", "display": "a"}]
    assert run(
        [{"type": "renameMapEntry", "sourceKey": "value", "targetKey": "id"}],
        {"value": "a", "x": 1},
    ) == {"x": 1, "id": "a"}


def test_codes() -> None:
    addresses = [{"country": "United States"}, {"country": "DEU"}, {"region": "x"}]
    assert run(
        [
            {
                "type": "convertCountryCode",
                "outputFormat": "alpha2",
                "inputAttributes": ["country"],
                "outputAttribute": "country",
            }
        ],
        addresses,
    ) == [{"country": "US"}, {"country": "DE"}, {"region": "x"}]
    assert run(
        [
            {
                "type": "convertCountryCode",
                "outputFormat": "numeric",
                "inputAttributes": "issuingCountry",
                "outputAttribute": "country",
            }
        ],
        {"issuingCountry": "US"},
    ) == {"issuingCountry": "US", "country": "840"}
    assert run(
        [
            {
                "type": "convertCountryRegion",
                "outputFormat": "fullName",
                "inputAttributes": ["region", "country"],
                "outputAttribute": "region",
            }
        ],
        {"region": "AL", "country": "US"},
    ) == {"region": "Alabama", "country": "US"}
    assert run(
        [
            {
                "type": "convertCountryRegion",
                "outputFormat": "alpha2",
                "inputAttributes": ["region", "country"],
                "outputAttribute": "region",
            }
        ],
        {"region": "US-AL"},
    ) == {"region": "US-AL"}
    assert run([{"type": "convertLocaleCode", "outputFormat": "iso639"}], "en-US") == "EN"
    assert run([{"type": "convertLocaleCode", "outputFormat": "bcp47"}], "DE") == "de-DE"
    assert run([{"type": "convertLocaleCode", "outputFormat": "iso639"}], "EO") == "EN"
    for sap, iana in [
        ("CET", "Europe/Berlin"),
        ("EST", "America/New_York"),
        ("MSTNO", "America/Phoenix"),
        ("AUSNSW", "Australia/Sydney"),
        ("INDIA", "Asia/Kolkata"),
        ("GMTUK", "Europe/London"),
        ("UTC", "Etc/UTC"),
    ]:
        assert run([{"type": "convertTimezoneCode", "outputFormat": "iana"}], sap) == iana
        assert run([{"type": "convertTimezoneCode", "outputFormat": "sap"}], iana) == sap
    assert run([{"type": "convertTimezoneCode", "outputFormat": "sap"}], "Asia/Shanghai") == (
        "UTC+8"
    )
    assert run([{"type": "convertTimezoneCode", "outputFormat": "iana"}], "??") == "Europe/Berlin"
    assert run([{"type": "convertTimezoneCode", "outputFormat": "sap"}], "Mars/Base") == "CET"


def test_manipulate_date() -> None:
    shift = [
        {
            "type": "manipulateDate",
            "sourceDateFormat": "yyyy-MM-dd",
            "targetDateFormat": "dd.MM.yyyy",
            "months": "+1",
            "days": -1,
        }
    ]
    assert run(shift, "2024-01-31") == "28.02.2024"
    epoch = [
        {
            "type": "manipulateDate",
            "sourceDateFormat": "Date(milliseconds)",
            "targetDateFormat": "yyyy-MM-dd'T'HH:mm:ssXXX",
        }
    ]
    assert run(epoch, "/Date(1700000000000)/") == "2023-11-14T22:13:20Z"
    assert run(epoch, "/Date(1700000000000+0200)/") == "2023-11-14T22:13:20Z"
    to_epoch = [
        {
            "type": "manipulateDate",
            "sourceDateFormat": "yyyy-MM-dd HH:mm:ss",
            "targetDateFormat": "Date(milliseconds)",
            "hours": 1,
        }
    ]
    assert run(to_epoch, "2023-11-14 21:13:20") == "/Date(1700000000000)/"
    assert "does not match" in fails(shift, "14.11.2023")


def test_manipulate_date_parses_adjacent_numbers_by_their_width() -> None:
    """Java's adjacent value parsing: LDAP generalized time has no separators."""
    generalized = [
        {
            "type": "manipulateDate",
            "sourceDateFormat": "yyyyMMddHHmmss'Z'",
            "targetDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
        }
    ]
    assert run(generalized, "20261204225959Z") == "2026-12-04T22:59:59Z"
    compact = [
        {"type": "manipulateDate", "sourceDateFormat": "yyMMdd", "targetDateFormat": "d/M/yy"}
    ]
    assert run(compact, "240131") == "31/1/24"
    assert "does not match" in fails(generalized, "202612042259Z")


def test_random_password() -> None:
    spec = {
        "type": "randomPassword",
        "passwordLength": 16,
        "minimumNumberOfLowercaseLetters": 2,
        "minimumNumberOfUppercaseLetters": 2,
        "minimumNumberOfDigits": 2,
        "minimumNumberOfSpecialSymbols": 2,
    }
    passwords = {run([spec]) for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert len(password) == 16
        assert sum(c in string.ascii_lowercase for c in password) >= 2
        assert sum(c in string.ascii_uppercase for c in password) >= 2
        assert sum(c in string.digits for c in password) >= 2
        assert sum(c in "~!@#$%^&*()_+" for c in password) >= 2
    custom = {**spec, "specialSymbols": "#", "passwordLength": 8}
    assert "#" in run([custom])
    too_many = {**spec, "passwordLength": 4}
    doc = {"user": {"mappings": [{"targetPath": "$.p", "functions": [too_many]}]}}
    assert isinstance(Transformation(doc).apply("user", {}), Failed)


def test_resolve_entity_ids() -> None:
    resolver = Resolver({"u1": "T1", "u2": "T2"})
    assert run([{"type": "resolveEntityIds"}], ["u1", "u3", "u2"], resolver=resolver) == [
        "T1",
        "T2",
    ]
    assert (
        run([{"type": "resolveEntityIds", "entityType": "group"}], "u1", resolver=resolver) == "T1"
    )
    assert resolver.calls[-1] == (["u1"], "group")
    members = [{"value": "u1", "type": "User"}, {"value": "g9", "type": "Group"}]
    assert run(
        [
            {
                "type": "resolveEntityIds",
                "applyOnElements": True,
                "applyOnAttribute": "value",
                "condition": "@.type == 'User'",
            }
        ],
        members,
        resolver=resolver,
    ) == [{"value": "T1", "type": "User"}, {"value": "g9", "type": "Group"}]
    # Without operational data (a dry run), ids stay as they are.
    assert run([{"type": "resolveEntityIds"}], ["u1", "u3"]) == ["u1", "u3"]


def test_common_parameters() -> None:
    elements = [{"name": "a"}, {"name": "b", "skip": True}]
    out = run(
        [
            {
                "type": "toUpperCaseString",
                "applyOnElements": True,
                "applyOnAttribute": "name",
                "condition": "!(@.skip == true)",
            }
        ],
        elements,
    )
    assert out == [{"name": "A"}, {"name": "b", "skip": True}]
    out = run(
        [
            {
                "type": "toUpperCaseString",
                "applyOnJsonAttribute": "name",
                "assignToAttribute": "upper",
            }
        ],
        {"name": "a"},
    )
    assert out == {"name": "a", "upper": "A"}
    assert run([{"type": "toUpperCaseString", "applyOnElements": True}], ["a", "b"]) == ["A", "B"]
    assert (
        run(
            [{"type": "toUpperCaseString", "condition": "$.flag == true"}],
            "a",
            source={"flag": False},
        )
        == "a"
    )
