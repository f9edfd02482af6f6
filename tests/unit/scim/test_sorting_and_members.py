"""sortBy in memory and membership changes in memory, as proxy systems use them."""

from __future__ import annotations

from typing import Any

import pytest

from provisor.scim import schemas as s
from provisor.scim.errors import InvalidValueError, TooManyError
from provisor.scim.limits import Limits
from provisor.scim.members import apply_member_changes, split_members
from provisor.scim.patch import Operation
from provisor.scim.registry import Registry
from provisor.scim.sorting import sort_resources

RT = Registry().user


def user(name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [s.USER], "userName": name, **extra}


def test_sorting_folds_case_ranks_primary_values_and_puts_missing_last() -> None:
    rt = RT
    docs = [
        user("b", emails=[{"value": "z@x"}, {"value": "a@x", "primary": True}]),
        user("C", emails=[{"value": "m@x"}]),
        user("a"),
    ]
    assert [d["userName"] for d in sort_resources(rt, docs, "userName")] == ["a", "b", "C"]
    by_mail = sort_resources(rt, docs, "emails")
    assert [d["userName"] for d in by_mail] == ["b", "C", "a"]  # primary a@x, m@x, none
    down = sort_resources(rt, docs, "emails.value", descending=True)
    assert [d["userName"] for d in down] == ["a", "C", "b"]  # none first descending
    enterprise = [
        user("x", **{s.ENTERPRISE_USER: {"employeeNumber": "2"}}),
        user("y", **{s.ENTERPRISE_USER: {"employeeNumber": "1"}}),
    ]
    sorted_ = sort_resources(rt, enterprise, f"{s.ENTERPRISE_USER}:employeeNumber")
    assert [d["userName"] for d in sorted_] == ["y", "x"]


@pytest.mark.parametrize("sort_by", ["nope", "name", "urn:x:y:attr"])
def test_sorting_by_an_unknown_or_complex_attribute_is_invalid(sort_by: str) -> None:
    with pytest.raises(InvalidValueError):
        sort_resources(RT, [user("a")], sort_by)


def test_member_changes_in_memory() -> None:
    members = [{"value": "u1", "type": "User"}, {"value": "g1", "type": "Group"}]
    ops = [
        Operation("add", "members", [{"value": "u2"}, {"value": "u1"}]),
        Operation("remove", 'members[type eq "Group"]', None),
        Operation("remove", "members", [{"value": "u1"}]),
    ]
    doc_ops, changes = split_members(ops)
    assert doc_ops == []
    assert apply_member_changes(members, changes) == [{"value": "u2"}]
    _, replaced = split_members([Operation("replace", "members", [{"value": "u9"}])])
    assert apply_member_changes(members, replaced) == [{"value": "u9"}]
    _, cleared = split_members([Operation("remove", "members", None)])
    assert apply_member_changes(members, cleared) == []


def test_member_filters_in_memory_are_bounded() -> None:
    members = [{"value": f"u{i}"} for i in range(50)]
    _, changes = split_members([Operation("remove", 'members[value eq "u1"]', None)])
    with pytest.raises(TooManyError):
        apply_member_changes(members, changes, Limits(patch_max_comparisons=10))
