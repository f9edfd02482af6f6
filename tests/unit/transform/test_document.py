"""Documents (spec §1.2, §1.3, §1.8): reading, %property% substitution and validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisor.errors import InvalidTransformationError
from provisor.transform import Deleted, Failed, Ignored, Skipped, Transformation, Transformed
from provisor.transform.document import compile_document, strip_comments, substitute
from provisor.transform.functions import FUNCTIONS as FUNCTIONS_BY_NAME


def problems_of(document: object, properties: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InvalidTransformationError) as info:
        Transformation(document if isinstance(document, str) else json.dumps(document), properties)
    return info.value.problems


def test_every_problem_is_reported_at_once_with_its_location() -> None:
    problems = problems_of(
        {
            "user": {
                "condition": "$.a ==",
                "skipOperations": ["frob"],
                "mappings": [
                    {"sourcePath": "$.x[", "targetPath": "$.y"},
                    {"constant": 1},
                    {
                        "sourcePath": "$.a",
                        "targetPath": "$.b",
                        "functions": [{"type": "nope"}, {"function": "substring"}],
                    },
                    {
                        "type": "valueMapping",
                        "sourcePaths": ["$.a", "$.b"],
                        "targetPath": "$.c",
                        "valueMappings": [{"key": ["x"], "mappedValue": 1}],
                    },
                    {"sourcePath": "$.a", "targetPath": "$.b", "optional": "maybe"},
                    {"sourcePath": "$.a", "targetPath": "$.b", "scope": "always"},
                    {"sourcePath": "$.a", "constant": 1, "targetPath": "$.b"},
                    {"type": "merge", "targetPath": "$.b"},
                    {"type": "rename", "targetPath": "$.b"},
                    {"sourcePth": "$.a", "targetPath": "$.b"},
                ],
            },
            "group": 5,
        }
    )
    locations = [p.split(": ", 1)[0] for p in problems]
    assert locations == [
        "user.condition",
        "user.skipOperations",
        "user.mappings[0].sourcePath",
        "user.mappings[1]",
        "user.mappings[2].functions[0].function",
        "user.mappings[2].functions[1].beginIndex",
        "user.mappings[3].valueMappings[0].key",
        "user.mappings[4].optional",
        "user.mappings[5].scope",
        "user.mappings[6]",
        "user.mappings[7].type",
        "user.mappings[8].constant",
        "user.mappings[9].sourcePth",
        "user.mappings[9]",
        "group",
    ]
    assert "unknown function 'nope'" in problems[4]
    assert "one of sourcePath, sourceVariable and constant" in problems[9]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[1, 2]", "a transformation is a JSON object"),
        ('{"user": {"mappings": [}', "not valid JSON"),
        ('{"user": {"mappings": {}}}', "user.mappings: expected a list of mappings"),
        ('{"user": {"mappings": ["x"]}}', "user.mappings[0]: a mapping is a JSON object"),
        ('{"user": {"ignore": 1}}', "user.ignore: expected true or false"),
        ('{"user": {"colour": 1}}', "user.colour: unknown key"),
        (
            '{"user": {"mappings": [{"sourcePath": 5, "targetPath": "$.a"}]}}',
            "sourcePath: expected a JSONPath string",
        ),
        (
            '{"user": {"mappings": [{"sourcePath": "$.a", "targetPath": "a.b"}]}}',
            "user.mappings[0].targetPath",
        ),
        (
            '{"user": {"mappings": [{"sourcePath": "$.a", "targetPath": "$.b", '
            '"condition": "$.a =~ /[/"}]}}',
            "user.mappings[0].condition",
        ),
        (
            '{"user": {"mappings": [{"sourcePath": "$.a", "targetPath": "$.b", '
            '"functions": [{"type": "replaceAllString", "regex": "(", "replacement": "x"}]}]}}',
            "user.mappings[0].functions[0]",
        ),
    ],
)
def test_invalid_documents_name_the_problem(text: str, expected: str) -> None:
    assert any(expected in problem for problem in problems_of(text)), problems_of(text)


def test_block_comments_between_array_items_are_tolerated() -> None:
    text = """{"user": {"mappings": [
        /* the id */ {"sourcePath": "$.id", "targetPath": "$.id"},
        /* a "quoted" comment */
        {"constant": "/* not a comment */", "targetPath": "$.note"}
    ]}}"""
    outcome = Transformation(text).apply("user", {"id": "1"})
    assert isinstance(outcome, Transformed)
    assert outcome.document == {"id": "1", "note": "/* not a comment */"}


def test_strip_comments_keeps_escaped_quotes_in_strings() -> None:
    assert strip_comments(r'{"a": "x\"/*y*/"} /* z */') == r'{"a": "x\"/*y*/"} '


def test_property_substitution_is_one_pass_and_unknown_keys_become_null() -> None:
    properties = {"ldap.attribute.user.id": "uid", "loop": "%ldap.attribute.user.id%"}
    document = {
        "user": {
            "mappings": [
                {"sourcePath": "$.%ldap.attribute.user.id%[0]", "targetPath": "$.userName"},
                {"constant": "%loop%", "targetPath": "$.loop"},
                {"constant": "%missing.key%", "targetPath": "$.missing"},
                {"constant": "100% sure, 50% done", "targetPath": "$.percent"},
            ]
        }
    }
    outcome = Transformation(document, properties).apply("user", {"uid": ["jdoe"]})
    assert isinstance(outcome, Transformed)
    assert outcome.document == {
        "userName": "jdoe",
        "loop": "%ldap.attribute.user.id%",
        "missing": "null",
        "percent": "100% sure, 50% done",
    }


def test_substitution_inside_conditions_and_keys() -> None:
    assert substitute({"%k%": ["a%k%b", 1]}, {"k": "v"}) == {"v": ["avb", 1]}
    document = {
        "group": {
            "condition": "('%c4c.group.prefix%' === 'null') || "
            "($.displayName =~ /%c4c.group.prefix%.*/)",
            "mappings": [{"sourcePath": "$.displayName", "targetPath": "$.name"}],
        }
    }
    unset = Transformation(document).apply("group", {"displayName": "Other"})
    assert isinstance(unset, Transformed)
    prefixed = Transformation(document, {"c4c.group.prefix": "C4C_"})
    assert isinstance(prefixed.apply("group", {"displayName": "C4C_Sales"}), Transformed)
    assert not isinstance(prefixed.apply("group", {"displayName": "Sales"}), Transformed)


def test_a_property_not_set_never_names_anything() -> None:
    """Paths, variables, function attributes, object keys and paths in conditions made of a
    property not set are problems (each located), never the name "null" (decision 0017)."""
    document = {
        "user": {
            "condition": "$.%state.attribute% EMPTY false",
            "mappings": [
                {"sourcePath": "$.%source.attribute%", "targetPath": "$.a"},
                {"sourcePath": "$.b", "targetPath": "$['%target.attribute%'][0]"},
                {
                    "sourcePaths": ["$.x", "$.%second%"],
                    "type": "valueMapping",
                    "valueMappings": [{"key": ["1", "2"], "mappedValue": "y"}],
                    "targetPath": "$.c",
                },
                {"sourcePath": "$.d", "targetVariable": "%variable.name%"},
                {"constant": {"%key.name%": 1}, "targetPath": "$.e"},
                {
                    "sourcePath": "$.members",
                    "targetPath": "$.f",
                    "functions": [
                        {
                            "type": "resolveEntityIds",
                            "applyOnAttribute": "%member.key%",
                            "condition": "@.%member.type% == 'User'",
                        }
                    ],
                },
            ],
        }
    }
    with pytest.raises(InvalidTransformationError) as caught:
        compile_document(document, {"unrelated": "x"})
    where = sorted(p.split(": ")[0] for p in caught.value.problems)
    assert where == [
        "user.condition",
        "user.mappings[0].sourcePath",
        "user.mappings[1].targetPath",
        "user.mappings[2].sourcePaths",
        "user.mappings[3].targetVariable",
        "user.mappings[4].constant (a key)",
        "user.mappings[5].functions[0].applyOnAttribute",
        "user.mappings[5].functions[0].condition",
    ]
    assert "the property target.attribute is not set" in caught.value.problems[2]
    names = {
        "state.attribute": "s",
        "source.attribute": "s",
        "target.attribute": "t",
        "second": "two",
        "variable.name": "v",
        "key.name": "k",
        "member.key": "value",
        "member.type": "type",
    }
    assert compile_document(document, names)["user"].mappings


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"constant": 1, "targetPath": "$..a"}, "not DeepScan"),
        ({"type": "remove", "targetPath": "$.a[1,2]"}, "not Indexes"),
        ({"constant": 1, "targetPath": "$.a[0:2]"}, "not Slice"),
        ({"constant": 1, "targetPath": "$['a','b']"}, "not Keys"),
        ({"type": "rename", "targetPath": "$.a[0]", "constant": "b"}, "ending with a key"),
    ],
)
def test_target_paths_the_engine_cannot_write_are_refused(
    mapping: dict[str, Any], expected: str
) -> None:
    """Refused when compiled, not an exception when an entity is transformed (hypothesis
    found ``$..a``: "cannot write through DeepScan" out of ``apply``)."""
    with pytest.raises(InvalidTransformationError, match=expected):
        compile_document({"user": {"mappings": [mapping]}})


def test_variables_in_text_are_spelled_as_json() -> None:
    """``${var}`` of a variable holding a boolean, an object or a list with a null: JSON's
    spelling, never Python's (True, None, {'a': 1})."""
    document = {
        "user": {
            "mappings": [
                {"sourcePath": "$.flag", "targetVariable": "flag"},
                {"sourcePath": "$.object", "targetVariable": "object"},
                {"constant": "${flag} ${object} ${unset}", "targetPath": "$.text"},
            ]
        }
    }
    entity = {"flag": True, "object": {"a": [1, None]}}
    outcome = Transformation(document).apply("user", entity)
    assert isinstance(outcome, Transformed)
    assert outcome.document == {"text": 'true {"a":[1,null]} null'}


def test_a_bare_section_applies_to_every_entity_type() -> None:
    document = {
        "condition": "$.active == true",
        "mappings": [{"sourcePath": "$.name", "targetPath": "$.n"}],
    }
    transformation = Transformation(document)
    for entity_type in ("user", "group", "role"):
        outcome = transformation.apply(entity_type, {"name": "x", "active": True})
        assert isinstance(outcome, Transformed)
        assert outcome.document == {"n": "x"}


def test_ignore_accepts_the_string_true_and_entity_types_without_section_are_ignored() -> None:
    transformation = Transformation(
        {
            "user": {
                "mappings": [
                    {"sourcePath": "$.a", "targetPath": "$.a", "ignore": "true"},
                    {"sourcePath": "$.b", "targetPath": "$.b", "ignore": "false"},
                ]
            },
            "group": {"ignore": True, "mappings": []},
            "event": {"ignore": "TRUE"},
        }
    )
    outcome = transformation.apply("user", {"a": 1, "b": 2})
    assert isinstance(outcome, Transformed) and outcome.document == {"b": 2}
    for entity_type in ("group", "event", "role"):
        assert isinstance(transformation.apply(entity_type, {}), Ignored)


def test_documents_are_compiled_once_into_entities() -> None:
    entities = compile_document(
        '{"user": {"scimEntityEndpoint": "Users", "skipOperations": ["delete"], "mappings": []}}'
    )
    user = entities["user"]
    assert user.endpoint == "Users"
    assert user.skip_operations == {"delete"}
    assert user.mappings == ()


# -- any document: compiled, or rejected with InvalidTransformationError -------------------------

PATHS = st.sampled_from(
    [
        "$",
        "$.a",
        "$.a[0]",
        "$.a[*].b",
        "$['urn:x:y']['z']",
        "$.a[?(@.b)]",
        "$.a[?(@.b == 1)].c",
        "$.a.length()",
        "a",
        "$[",
        "$..a",
        "@.a",
    ]
)
VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=10) | PATHS
FUNCTIONS = st.fixed_dictionaries(
    {"type": st.sampled_from([*sorted(FUNCTIONS_BY_NAME), "nope", 3])},
    optional={
        key: VALUES
        for key in (
            "condition",
            "applyOnElements",
            "applyOnAttribute",
            "index",
            "separator",
            "regex",
            "replacement",
            "prefix",
            "outputFormat",
            "beginIndex",
            "algorithm",
            "key",
        )
    },
)
MAPPINGS = st.fixed_dictionaries(
    {},
    optional={
        "sourcePath": PATHS,
        "sourcePaths": st.lists(PATHS, max_size=2),
        "sourceVariable": VALUES,
        "variablePath": PATHS,
        "constant": VALUES,
        "targetPath": PATHS,
        "targetVariable": VALUES,
        "type": st.sampled_from(["set", "remove", "rename", "valueMapping", "x"]),
        "valueMappings": st.lists(
            st.fixed_dictionaries({"key": st.lists(VALUES, max_size=2), "mappedValue": VALUES}),
            max_size=2,
        ),
        "defaultValue": VALUES,
        "optional": VALUES,
        "condition": VALUES | st.just("$.a == 1"),
        "scope": st.sampled_from(["createEntity", "patchEntity", "deleteEntity", "x"]),
        "functions": st.lists(FUNCTIONS, max_size=2),
        "ignore": VALUES,
    },
)
ENTITIES = st.dictionaries(
    st.sampled_from(["a", "b", "urn:x:y"]),
    VALUES | st.lists(st.dictionaries(st.sampled_from(["b", "c", "z"]), VALUES, max_size=3)),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(
    mappings=st.lists(MAPPINGS, max_size=4),
    entity=ENTITIES,
)
def test_any_document_compiles_or_is_rejected_and_never_crashes(
    mappings: list[dict[str, Any]], entity: dict[str, Any]
) -> None:
    try:
        transformation = Transformation({"user": {"mappings": mappings}})
    except InvalidTransformationError as exc:
        assert exc.problems and all(p.startswith("user.") for p in exc.problems)
        return
    for operation in ("read", "create", "patch", "delete"):
        outcome = transformation.apply("user", entity, operation=operation)
        assert isinstance(outcome, Transformed | Skipped | Failed | Ignored | Deleted)


VALID_READS = st.sampled_from(
    [
        "$",
        "$.a",
        "$.a[0]",
        "$.a[*].b",
        "$['urn:x:y']",
        "$.a[?(@.b)]",
        "$.a[?(@.b == 1)].c",
        "$.a.length()",
        "$..b",
        "$.a[*]['b','c']",
    ]
)
VALID_WRITES = st.sampled_from(
    ["$", "$.o", "$.o[1].p", "$.o[?(@.v)]", "$['urn:x:y']['z']", "$.a[*].b"]
)
VALID_CALLS = st.sampled_from(
    [
        {"type": "toUpperCaseString"},
        {"type": "concatString", "prefix": "p-", "suffix": "$.a"},
        {"type": "elementAt", "index": 1},
        {"type": "splitStringToArray", "separator": ","},
        {"type": "substring", "beginIndex": 1, "endIndex": 3},
        {"type": "encode", "algorithm": "base32"},
        {"type": "decode", "algorithm": "base64"},
        {"type": "toString"},
        {"type": "replaceAllString", "regex": "[\\s\\p{Punct}]", "replacement": "_"},
        {"type": "getMatchedRegexGroup", "regex": "(a)(b)?", "groupIndex": 2},
        {"type": "putIfAbsent", "key": "t", "defaultValue": "w"},
        {"type": "copyMapEntry", "sourceKey": "b", "targetKey": "c"},
        {
            "type": "convertCountryCode",
            "outputFormat": "alpha3",
            "inputAttributes": ["b"],
            "outputAttribute": "c",
        },
        {
            "type": "manipulateDate",
            "sourceDateFormat": "Date(milliseconds)",
            "targetDateFormat": "yyyy-MM-dd",
            "days": "+1",
        },
        {"type": "resolveEntityIds"},
        {"type": "compositeId", "separator": ":", "subId": "$.b"},
        {
            "type": "toLowerCaseString",
            "applyOnElements": True,
            "applyOnAttribute": "b",
            "condition": "@.c EMPTY false",
        },
    ]
)
WELL_FORMED = st.fixed_dictionaries(
    {"sourcePath": VALID_READS, "targetPath": VALID_WRITES},
    optional={
        "functions": st.lists(VALID_CALLS, max_size=3),
        "optional": st.booleans(),
        "preserveArrayWithSingleElement": st.booleans(),
        "defaultValue": VALUES,
        "condition": st.sampled_from(
            [
                "$.a EMPTY false",
                "$.b =~ /x.*/",
                "$.a.length() > 1",
                "$.a[?(@.b)] != []",
                "$.a IN [1, 'x']",
            ]
        ),
    },
)


@settings(max_examples=400, deadline=None)
@given(
    mappings=st.lists(WELL_FORMED, min_size=1, max_size=4),
    entity=ENTITIES,
)
def test_well_formed_documents_run_on_any_entity(
    mappings: list[dict[str, Any]], entity: dict[str, Any]
) -> None:
    transformation = Transformation({"user": {"mappings": mappings}})
    for operation in ("read", "create", "delete"):
        outcome = transformation.apply("user", entity, operation=operation, trace=True)
        assert isinstance(outcome, Transformed | Skipped | Failed | Deleted)
        if isinstance(outcome, Transformed):
            json.dumps(outcome.document)
