"""Evaluation semantics (spec §1.7, §1.9): operations, scopes, skips, failures, variables, trace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from provisor.transform import (
    Deleted,
    Failed,
    Ignored,
    Operation,
    Skipped,
    Transformation,
    Transformed,
)

NOW = datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)


def transformed(outcome: Any) -> Transformed:
    assert isinstance(outcome, Transformed), outcome
    return outcome


def user(*mappings: dict[str, Any], **section: Any) -> Transformation:
    return Transformation({"user": {"mappings": list(mappings), **section}})


SCOPED = user(
    {"sourcePath": "$.userName", "targetPath": "$.userName"},
    {"constant": "new", "targetPath": "$.state", "scope": "createEntity"},
    {
        "sourcePath": "$.Operations",
        "targetPath": "$.Operations",
        "scope": "patchEntity",
        "preserveArrayWithSingleElement": True,
    },
    {"constant": False, "targetPath": "$.active", "scope": "deleteEntity"},
)


@pytest.mark.parametrize(
    "operation, expected",
    [
        (Operation.READ, {"userName": "jdoe"}),
        (Operation.CREATE, {"userName": "jdoe", "state": "new"}),
        (Operation.UPDATE, {"userName": "jdoe"}),
        (Operation.PATCH, {"Operations": [{"op": "replace", "path": "active", "value": False}]}),
        (Operation.DELETE, {"active": False}),
    ],
)
def test_scopes_select_the_mappings_of_each_operation(
    operation: Operation, expected: dict[str, Any]
) -> None:
    entity = {
        "userName": "jdoe",
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    outcome = transformed(SCOPED.apply("user", entity, operation=operation))
    assert outcome.document == expected
    assert outcome.operation is operation
    assert outcome.soft_delete is (operation is Operation.DELETE)


def test_delete_without_delete_entity_mappings_deletes_and_ignores_the_condition() -> None:
    transformation = user(
        {"sourcePath": "$.userName", "targetPath": "$.userName"}, condition="$.active == true"
    )
    assert isinstance(transformation.apply("user", {}, operation="delete"), Deleted)


def test_soft_delete_builds_a_patch_request_from_delete_entity_mappings_only() -> None:
    """The §1.3 example: IAS v2 / LID deactivate the user instead of deleting it."""
    transformation = user(
        {"sourcePath": "$.userName", "targetPath": "$.userName"},
        {
            "constant": "urn:ietf:params:scim:api:messages:2.0:PatchOp",
            "targetPath": "$.schemas[0]",
            "scope": "deleteEntity",
        },
        {"constant": "replace", "targetPath": "$.Operations[0].op", "scope": "deleteEntity"},
        {"constant": "active", "targetPath": "$.Operations[0].path", "scope": "deleteEntity"},
        {"constant": False, "targetPath": "$.Operations[0].value", "scope": "deleteEntity"},
        {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id", "scope": "deleteEntity"},
        condition="$.userName EMPTY false",
    )
    outcome = transformed(
        transformation.apply(
            "user", {}, operation="delete", variables={"entityIdTargetSystem": "T-1"}
        )
    )
    assert outcome.soft_delete
    assert outcome.document == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
        "id": "T-1",
    }


def test_entity_condition_skips_with_the_sap_reason() -> None:
    transformation = user(
        {"sourcePath": "$.userName", "targetPath": "$.userName"}, condition="$.emails.length() > 0"
    )
    outcome = transformation.apply("user", {"userName": "jdoe"}, operation="create")
    assert outcome == Skipped("Entity condition [$.emails.length() > 0] is not fulfilled")


@pytest.mark.parametrize(
    "operation, skipped",
    [("create", "create"), ("update", "update"), ("patch", "update"), ("delete", "delete")],
)
def test_skip_operations_after_the_condition(operation: str, skipped: str) -> None:
    transformation = user(
        {"sourcePath": "$.userName", "targetPath": "$.userName"},
        skipOperations=[skipped],
        condition="$.userName EMPTY false",
    )
    outcome = transformation.apply("user", {"userName": "jdoe"}, operation=operation)
    assert outcome == Skipped(
        f"Operation [{skipped}] is skipped in target transformation", operation=skipped
    )
    other = "update" if skipped != "update" else "create"
    assert isinstance(
        transformation.apply("user", {"userName": "jdoe"}, operation=other), Transformed
    )
    # The condition comes first: an entity failing it is skipped for the condition.
    outcome = transformation.apply(
        "user", {}, operation="create" if skipped != "delete" else "update"
    )
    assert isinstance(outcome, Skipped) and outcome.reason.startswith("Entity condition")


def test_a_missing_mandatory_value_fails_naming_the_mapping_and_the_path() -> None:
    transformation = user(
        {"sourcePath": "$.userName", "targetPath": "$.userName"},
        {"sourcePath": "$.name.familyName", "targetPath": "$.sn"},
    )
    outcome = transformation.apply("user", {"userName": "jdoe"})
    assert isinstance(outcome, Failed)
    assert outcome.mapping == 1
    assert outcome.reason == (
        "Mandatory value missing: mapping #1 (set: $.name.familyName -> $.sn) "
        "found no value at $.name.familyName."
    )
    # null counts as missing; an empty string does not.
    assert isinstance(
        transformation.apply("user", {"userName": "j", "name": {"familyName": None}}), Failed
    )
    ok = transformed(transformation.apply("user", {"userName": "j", "name": {"familyName": ""}}))
    assert ok.document == {"userName": "j", "sn": ""}


def test_optional_default_value_and_an_indefinite_path_matching_nothing() -> None:
    transformation = user(
        {
            "sourcePath": "$.userType",
            "targetPath": "$.userType",
            "optional": True,
            "defaultValue": "employee",
        },
        {"sourcePath": "$.nickName", "targetPath": "$.nickName", "optional": True},
        {
            "sourcePath": "$.emails[?(@.primary == true)].value",
            "targetPath": "$.mail",
            "optional": True,
        },
        {"sourcePath": "$.emails[*].value", "targetPath": "$.all"},
    )
    outcome = transformed(
        transformation.apply(
            "user", {"emails": [{"value": "a@x.org"}, {"value": "b@x.org", "primary": True}]}
        )
    )
    assert outcome.document == {
        "userType": "employee",
        "mail": "b@x.org",
        "all": ["a@x.org", "b@x.org"],
    }
    failed = transformation.apply("user", {"emails": []})
    assert isinstance(failed, Failed) and "$.emails[*].value" in failed.reason


def test_single_element_arrays_are_unwrapped_unless_preserved() -> None:
    transformation = user(
        {"sourcePath": "$.emails[*].value", "targetPath": "$.one"},
        {
            "sourcePath": "$.emails[*].value",
            "targetPath": "$.kept",
            "preserveArrayWithSingleElement": True,
        },
        {"sourcePath": "$.emails", "targetPath": "$.objects"},
    )
    outcome = transformed(transformation.apply("user", {"emails": [{"value": "a@x.org"}]}))
    assert outcome.document == {
        "one": "a@x.org",
        "kept": ["a@x.org"],
        "objects": {"value": "a@x.org"},
    }


def test_value_mapping_first_row_wins_and_falls_back_to_the_default() -> None:
    transformation = user(
        {
            "type": "valueMapping",
            "sourcePaths": ["$.country", "$.employeeType"],
            "targetPath": "$.costCenter",
            "defaultValue": "CC-0",
            "valueMappings": [
                {"key": ["DE", "external"], "mappedValue": "CC-DE-X"},
                {"key": ["DE", "employee"], "mappedValue": "CC-DE"},
                {"key": ["DE", "employee"], "mappedValue": "never"},
                {"key": [1, True], "mappedValue": {"numeric": True}},
            ],
        }
    )

    def cost_center(entity: dict[str, Any]) -> Any:
        return transformed(transformation.apply("user", entity)).document["costCenter"]

    assert cost_center({"country": "DE", "employeeType": "employee"}) == "CC-DE"
    assert cost_center({"country": "DE", "employeeType": "external"}) == "CC-DE-X"
    assert cost_center({"country": "FR", "employeeType": "employee"}) == "CC-0"
    assert cost_center({"country": "DE"}) == "CC-0"
    assert cost_center({"country": "1", "employeeType": "true"}) == {"numeric": True}


def test_type_remove_and_rename_act_on_the_output() -> None:
    transformation = user(
        {"sourcePath": "$", "targetPath": "$"},
        {"type": "remove", "targetPath": "$.meta"},
        {"type": "remove", "targetPath": "$['emails'][*]['type']"},
        {"type": "rename", "targetPath": "$.userName", "constant": "login"},
    )
    source = {
        "userName": "jdoe",
        "meta": {"version": "1"},
        "emails": [{"value": "a@x.org", "type": "work"}, {"value": "b@x.org"}],
    }
    outcome = transformed(transformation.apply("user", source))
    assert outcome.document == {
        "login": "jdoe",
        "emails": [{"value": "a@x.org"}, {"value": "b@x.org"}],
    }
    assert source["meta"] == {"version": "1"}, "the input entity is never changed"


def test_later_mappings_overwrite_earlier_ones() -> None:
    transformation = user(
        {"sourcePath": "$.a", "targetPath": "$.x"},
        {"sourcePath": "$.b", "targetPath": "$.x", "optional": True},
    )
    assert transformed(transformation.apply("user", {"a": 1, "b": 2})).document == {"x": 2}
    assert transformed(transformation.apply("user", {"a": 1})).document == {"x": 1}


def test_variables_target_source_and_variable_path() -> None:
    transformation = user(
        {"sourcePath": "$.id", "targetVariable": "entityIdSourceSystem"},
        {
            "sourcePath": "$.groups",
            "targetVariable": "membersVariable",
            "preserveArrayWithSingleElement": True,
        },
        {
            "sourceVariable": "membersVariable",
            "variablePath": "$[*].value",
            "targetPath": "$.memberOf",
            "preserveArrayWithSingleElement": True,
        },
        {"constant": "id-${entityIdSourceSystem}", "targetPath": "$.ref"},
        {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id"},
    )
    outcome = transformed(
        transformation.apply("user", {"id": "S1", "groups": [{"value": "g1"}, {"value": "g2"}]})
    )
    assert outcome.document == {"memberOf": ["g1", "g2"], "ref": "id-S1"}
    assert outcome.variables["entityIdSourceSystem"] == "S1"
    updated = transformed(
        transformation.apply(
            "user",
            {"id": "S1", "groups": []},
            operation="update",
            variables={"entityIdTargetSystem": "T9"},
        )
    )
    assert updated.document["id"] == "T9"


def test_operation_type_variable_pattern_of_the_abap_defaults() -> None:
    transformation = user(
        {"constant": "updateEntity", "targetVariable": "operationTypeVariable"},
        {
            "constant": "createEntity",
            "targetVariable": "operationTypeVariable",
            "scope": "createEntity",
        },
        {
            "condition": "'${operationTypeVariable}' == 'createEntity'",
            "constant": "X",
            "targetPath": "$.initialPassword",
        },
    )
    assert transformed(transformation.apply("user", {}, operation="create")).document == {
        "initialPassword": "X"
    }
    assert transformed(transformation.apply("user", {}, operation="update")).document == {}


def test_assign_and_unassign_group_variables_last_matching_wins() -> None:
    transformation = user(
        {"sourcePath": "$.userName", "targetPath": "$.userName"},
        {
            "condition": "$.department == 'Sales'",
            "constant": [{"id": "G-sales"}],
            "targetVariable": "assignGroup",
        },
        {
            "condition": "$.country == 'DE'",
            "constant": [{"id": "G-de"}],
            "targetVariable": "assignGroup",
        },
        {"constant": [{"id": "G-all"}], "targetVariable": "unassignGroup", "scope": "deleteEntity"},
    )
    outcome = transformed(
        transformation.apply(
            "user", {"userName": "j", "department": "Sales", "country": "DE"}, operation="create"
        )
    )
    assert outcome.variables["assignGroup"] == {"id": "G-de"}
    assert "assignGroup" not in outcome.document
    deleted = transformed(transformation.apply("user", {}, operation="delete"))
    assert deleted.variables["unassignGroup"] == {"id": "G-all"}
    assert deleted.document == {}


def test_current_date_uses_the_date_format_property() -> None:
    mapping = {"constant": "${currentDate}", "targetPath": "$.stamp"}
    plain = Transformation({"user": {"mappings": [mapping]}})
    assert transformed(plain.apply("user", {}, now=lambda: NOW)).document == {
        "stamp": "2026-03-14 09:26:53.589"
    }
    formatted = Transformation(
        {"user": {"mappings": [mapping]}}, {"ips.date.variable.format": "yyyyMMdd'T'HHmm"}
    )
    assert transformed(formatted.apply("user", {}, now=lambda: NOW)).document == {
        "stamp": "20260314T0926"
    }


def test_validity_period_condition_against_current_date() -> None:
    transformation = user(
        {"sourcePath": "$.userName", "targetPath": "$.userName"},
        condition="($.validityPeriod.startDate <= '${currentDate}') && "
        "($.validityPeriod.endDate > '${currentDate}')",
    )

    def outcome(start: str, end: str) -> Any:
        entity = {"userName": "j", "validityPeriod": {"startDate": start, "endDate": end}}
        return transformation.apply("user", entity, now=lambda: NOW)

    assert isinstance(outcome("2026-01-01 00:00:00.000", "2027-01-01 00:00:00.000"), Transformed)
    assert isinstance(outcome("2026-04-01 00:00:00.000", "2027-01-01 00:00:00.000"), Skipped)
    assert isinstance(outcome("2025-01-01 00:00:00.000", "2026-03-01 00:00:00.000"), Skipped)


def test_trace_tells_what_each_mapping_did() -> None:
    transformation = user(
        {
            "sourcePath": "$.userName",
            "targetPath": "$.userName",
            "functions": [{"type": "toUpperCaseString"}],
        },
        {"sourcePath": "$.nick", "targetPath": "$.nickName", "optional": True},
        {"condition": "$.active == true", "constant": "on", "targetPath": "$.state"},
        {"ignore": True, "constant": 1, "targetPath": "$.x"},
        {"constant": 1, "targetPath": "$.y", "scope": "createEntity"},
        {"type": "remove", "targetPath": "$.tmp"},
    )
    outcome = transformed(transformation.apply("user", {"userName": "jdoe"}, trace=True))
    steps = [step.to_dict() for step in outcome.trace]
    assert steps == [
        {
            "mapping": 0,
            "label": "mapping #0 (set: $.userName -> $.userName)",
            "status": "applied",
            "input": "jdoe",
            "functions": [{"function": "toUpperCaseString", "result": "JDOE"}],
            "value": "JDOE",
        },
        {
            "mapping": 1,
            "label": "mapping #1 (set: $.nick -> $.nickName)",
            "status": "skipped",
            "detail": "no source value (optional)",
        },
        {
            "mapping": 2,
            "label": "mapping #2 (set: constant -> $.state)",
            "status": "skipped",
            "detail": "condition [$.active == true] is not fulfilled",
        },
        {
            "mapping": 3,
            "label": "mapping #3 (set: constant -> $.x)",
            "status": "skipped",
            "detail": "ignored",
        },
        {
            "mapping": 5,
            "label": "mapping #5 (remove $.tmp)",
            "status": "applied",
            "detail": "removed",
        },
    ]
    failed = user({"sourcePath": "$.a", "targetPath": "$.a"}).apply("user", {}, trace=True)
    assert isinstance(failed, Failed)
    assert [step.status for step in failed.trace] == ["failed"]
    assert not transformed(transformation.apply("user", {"userName": "x"})).trace


def test_function_failures_fail_the_entity_with_the_function_named() -> None:
    transformation = user(
        {
            "sourcePath": "$.when",
            "targetPath": "$.when",
            "functions": [
                {
                    "type": "manipulateDate",
                    "sourceDateFormat": "yyyy-MM-dd",
                    "targetDateFormat": "dd.MM.yyyy",
                }
            ],
        }
    )
    assert transformed(transformation.apply("user", {"when": "2026-02-01"})).document == {
        "when": "01.02.2026"
    }
    outcome = transformation.apply("user", {"when": "yesterday"})
    assert isinstance(outcome, Failed)
    assert "function manipulateDate failed" in outcome.reason


def test_unknown_entity_types_and_ignored_sections() -> None:
    transformation = Transformation(
        {"user": {"mappings": []}, "group": {"ignore": True, "mappings": []}}
    )
    assert transformation.apply("role", {}) == Ignored(
        "The transformation has no section for entity type role."
    )
    assert isinstance(transformation.apply("group", {}), Ignored)


def test_deeply_nested_input_fails_cleanly() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    outcome = user({"sourcePath": "$", "targetPath": "$.copy"}).apply("user", deep)
    assert isinstance(outcome, Transformed | Failed)
