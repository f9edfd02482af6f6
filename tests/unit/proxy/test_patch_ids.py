"""Member ids inside a proxy PATCH are decoded to back-end keys, as in POST and PUT bodies."""

from __future__ import annotations

from provisor.proxy import ids
from provisor.proxy.service import _with_decoded_members
from provisor.scim.patch import Operation

KEY = "cn=ext member/1,ou=people,dc=example"


def test_member_values_and_filters_are_decoded() -> None:
    encoded = ids.encode(KEY)
    assert encoded != KEY
    body = _with_decoded_members(
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]},
        [
            Operation("add", "members", [{"value": encoded, "display": "Ext"}]),
            Operation("remove", f'members[value eq "{encoded}"]', None),
            Operation("replace", None, {"members": [{"value": encoded}], "displayName": "G"}),
            Operation("add", "displayName", encoded),  # not a member: left alone
        ],
    )
    add, remove, replace, other = body["Operations"]
    assert add == {"op": "add", "path": "members", "value": [{"value": KEY, "display": "Ext"}]}
    assert remove["op"] == "remove" and "value" not in remove
    assert KEY in remove["path"] and encoded not in remove["path"]
    assert replace["value"] == {"members": [{"value": KEY}], "displayName": "G"}
    assert other["value"] == encoded
