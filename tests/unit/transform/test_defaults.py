"""The default transformations (spec §1.11) on realistic entities, and any JSON through them."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisor.transform import (
    Deleted,
    Failed,
    Ignored,
    Skipped,
    Transformation,
    Transformed,
)
from provisor.transform.defaults import available, default_transformation

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SAP_USER = "urn:ietf:params:scim:schemas:extension:sap:2.0:User"
CUSTOM_USER = "urn:sap:cloud:scim:schemas:extension:custom:2.0:User"
CUSTOM_GROUP = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Group"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

LDAP_PROPERTIES = {
    "ldap.attribute.user.id": "uid",
    "ldap.attribute.user.mail": "mail",
    "ldap.attribute.user.givenName": "givenName",
    "ldap.attribute.user.surname": "sn",
    "ldap.attribute.user.groups": "memberOf",
    "ldap.attribute.user.mobile": "mobile",
    "ldap.attribute.user.telephoneNumber": "telephoneNumber",
    "ldap.attribute.user.object.class.required": "cn",
    "ldap.attribute.group.id": "cn",
    "ldap.attribute.group.object.class.required": "cn",
    "ldap.attribute.group.member": "member",
    "ldap.member.uniquename.attribute": "uid",
    "ldap.user.path": "ou=people,dc=example,dc=org",
    "ldap.group.path": "ou=groups,dc=example,dc=org",
}

SCIM_USER = {
    "schemas": [CORE_USER, ENTERPRISE],
    "id": "2819c223",
    "externalId": "e1",
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "active": True,
    ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": "u1", "displayName": "John"}},
    "meta": {"resourceType": "User", "version": 'W/"3"'},
}
SCIM_GROUP = {
    "schemas": [CORE_GROUP],
    "id": "g1",
    "displayName": "Sales",
    "members": [
        {"value": "u1", "type": "User"},
        {"value": "u2", "type": "User"},
        {"value": "g9", "type": "Group"},
        {"value": "unknown", "type": "User"},
    ],
}
INTERNAL_USER = {k: v for k, v in SCIM_USER.items() if k not in ("id", "meta")}


class Resolver:
    """Operational data of a target: source ids u1, u2 (users) and g9 (group) are known."""

    def resolve(
        self,
        ids: Sequence[str],
        *,
        entity_type: str,
        source_system: str | None,
        target_system: str | None,
    ) -> dict[str, str]:
        known = {"u1": "T-u1", "u2": "T-u2"} if entity_type == "user" else {"g9": "T-g9"}
        return {i: known[i] for i in ids if i in known}


def run(
    connector: str,
    role: str,
    entity_type: str,
    entity: Any,
    operation: str = "create",
    unignore: bool = False,
    **variables: Any,
) -> Transformed:
    document = json.loads(default_transformation(connector, role))
    if unignore:
        document[entity_type]["ignore"] = False
    properties = LDAP_PROPERTIES if connector in ("ldap", "microsoft-ad") else {}
    outcome = Transformation(document, properties).apply(
        entity_type,
        copy.deepcopy(entity),
        operation=operation,
        resolver=Resolver(),
        variables=variables,
    )
    assert isinstance(outcome, Transformed), outcome
    return outcome


def test_every_connector_type_has_its_defaults() -> None:
    assert set(available()) >= {
        ("scim", "read"),
        ("scim", "write"),
        ("scim", "proxy-read"),
        ("scim", "proxy-write"),
        ("local-identity-directory", "read"),
        ("local-identity-directory", "write"),
        ("local-identity-directory", "proxy-read"),
        ("local-identity-directory", "proxy-write"),
        ("identity-authentication", "read"),
        ("identity-authentication", "write"),
        ("ldap", "read"),
        ("ldap", "write"),
        ("microsoft-ad", "read"),
        ("microsoft-ad", "write"),
        ("csv", "read"),
        ("csv", "write"),
    }
    with pytest.raises(KeyError):
        default_transformation("scim", "sideways")
    with pytest.raises(KeyError):
        default_transformation("fax", "read")


def test_scim_system_read() -> None:
    outcome = run("scim", "read", "user", SCIM_USER, operation="read")
    assert outcome.document == INTERNAL_USER
    assert outcome.variables["entityIdSourceSystem"] == "2819c223"
    document = json.loads(default_transformation("scim", "read"))
    assert Transformation(document).apply("group", SCIM_GROUP) == Ignored(
        "Entity type group is ignored by the transformation."
    )


def test_scim_system_write_create_and_update() -> None:
    created = run("scim", "write", "user", INTERNAL_USER)
    expected = {k: v for k, v in INTERNAL_USER.items() if k != ENTERPRISE}
    assert created.document == expected
    updated = run(
        "scim",
        "write",
        "user",
        {**INTERNAL_USER, "id": "stale"},
        operation="update",
        entityIdTargetSystem="T-7",
    )
    assert updated.document == {**expected, "id": "T-7"}


def test_scim_system_write_groups_resolve_members() -> None:
    outcome = run(
        "scim",
        "write",
        "group",
        SCIM_GROUP,
        operation="update",
        entityIdTargetSystem="T-g1",
    )
    assert outcome.document == {
        "schemas": [CORE_GROUP],
        "displayName": "Sales",
        "id": "T-g1",
        "members": [{"value": "T-u1"}, {"value": "T-u2"}],
    }


def test_scim_system_proxy_read_builds_the_location() -> None:
    base = "https://idp.example/ipsproxy/service/api/v1/scim/S1/Users/"
    outcome = run(
        "scim",
        "proxy-read",
        "user",
        {"id": "u-1", "userName": "bjensen", "emails": [{"value": "b@x.org", "primary": True}]},
        operation="read",
        entityBaseLocation=base,
    )
    assert outcome.document == {
        "id": "u-1",
        "userName": "bjensen",
        "emails": [{"value": "b@x.org", "primary": True}],
        "meta": {"location": base + "u-1"},
    }
    assert outcome.variables["entityLocationSourceSystem"] == base + "u-1"


def test_scim_system_proxy_write() -> None:
    outcome = run(
        "scim",
        "proxy-write",
        "user",
        {"userName": "bjensen", "emails": [{"value": "b@x.org"}]},
        operation="update",
        entityIdTargetSystem="T-1",
    )
    assert outcome.document == {
        "userName": "bjensen",
        "id": "T-1",
        "emails": [{"value": "b@x.org", "primary": True}],
    }


def test_local_identity_directory_read() -> None:
    outcome = run("local-identity-directory", "read", "user", SCIM_USER, operation="read")
    assert outcome.document == {
        CUSTOM_USER: {"userId": "2819c223"},
        "schemas": [CORE_USER, ENTERPRISE],
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": SCIM_USER["emails"],
        "active": True,
        ENTERPRISE: SCIM_USER[ENTERPRISE],
    }
    group = run("local-identity-directory", "read", "group", SCIM_GROUP, operation="read")
    assert group.document == {
        "schemas": [CORE_GROUP],
        "displayName": "Sales",
        "members": SCIM_GROUP["members"],
    }
    assert group.variables["entityIdSourceSystem"] == "g1"


def lid_user(emails: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [CORE_USER, ENTERPRISE, SAP_USER, CUSTOM_USER],
        "userName": "bjensen",
        SAP_USER: {
            "emails": [
                {"value": "bjensen@example.com", "primary": True, "verified": True},
                {"value": "babs@jensen.org", "verified": True},
            ],
            "sendMail": False,
            "mailVerified": True,
            "passwordDetails": {"status": "disabled"},
        },
        "emails": emails,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "addresses": [],
        "userType": "employee",
        "active": True,
        ENTERPRISE: {
            "employeeNumber": "701984",
            "manager": {"value": "T-u1", "displayName": "John"},
        },
    }


def test_local_identity_directory_write() -> None:
    created = run("local-identity-directory", "write", "user", INTERNAL_USER)
    assert created.document == lid_user(
        [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
    )
    updated = run(
        "local-identity-directory",
        "write",
        "user",
        INTERNAL_USER,
        operation="update",
        entityIdTargetSystem="T-1",
    )
    assert updated.document["id"] == "T-1"
    assert SAP_USER not in updated.document, "createEntity mappings do not run on update"


def test_local_identity_directory_write_condition_and_addresses() -> None:
    no_mail = {**INTERNAL_USER, "emails": [{"value": "not-an-address"}]}
    outcome = Transformation(default_transformation("local-identity-directory", "write")).apply(
        "user", no_mail
    )
    assert isinstance(outcome, Skipped) and "isValidEmail($.emails[0].value)" in outcome.reason
    with_addresses = {
        **INTERNAL_USER,
        "addresses": [
            {"locality": "Berlin"},
            {"locality": "Paris", "type": "other"},
            {"locality": "Home", "type": "home"},
        ],
    }
    written = run("local-identity-directory", "write", "user", with_addresses)
    assert written.document["addresses"] == [
        {"locality": "Berlin", "type": "work"},
        {"locality": "Paris", "type": "work"},
        {"locality": "Home", "type": "home"},
    ]


def test_local_identity_directory_write_groups() -> None:
    outcome = run("local-identity-directory", "write", "group", SCIM_GROUP)
    assert outcome.document == {
        "schemas": [
            CORE_GROUP,
            CUSTOM_GROUP,
            "urn:ietf:params:scim:schemas:extension:sap:2.0:Group",
        ],
        "displayName": "Sales",
        "members": [{"value": "T-u1"}, {"value": "T-u2"}, {"value": "T-g9"}],
        CUSTOM_GROUP: {"name": "Sales"},
    }


@pytest.mark.parametrize("connector", ["local-identity-directory", "scim"])
@pytest.mark.parametrize("entity_type", ["user", "group"])
def test_proxy_writes_of_scim_back_ends_pass_patch_requests_through(
    connector: str, entity_type: str
) -> None:
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    outcome = run(
        connector, "proxy-write", entity_type, patch, operation="patch", entityIdTargetSystem="T-1"
    )
    assert outcome.document == {"Operations": patch["Operations"], "schemas": patch["schemas"]}


def test_local_identity_directory_proxy_write_marks_what_it_creates() -> None:
    created = run("local-identity-directory", "proxy-write", "user", {"userName": "x"})
    assert created.document == {"userName": "x", SAP_USER: {"sourceSystem": 39}}


def test_identity_authentication_write_keeps_email_details() -> None:
    outcome = run("identity-authentication", "write", "user", INTERNAL_USER)
    assert outcome.document == lid_user(
        [{"value": "bjensen@example.com", "primary": True}, {"value": "babs@jensen.org"}]
    )


def test_ldap_read_and_write() -> None:
    entry = {
        "uid": ["bjensen"],
        "mail": ["bjensen@example.com"],
        "givenName": ["Barbara"],
        "sn": ["Jensen"],
        "cn": ["Barbara Jensen"],
        "memberOf": ["Sales", "Admins"],
        "mobile": ["+1 555 0100"],
        "objectClass": ["inetOrgPerson"],
    }
    read = run("ldap", "read", "user", entry, operation="read")
    assert read.document == {
        "userName": "bjensen",
        "schemas": [CORE_USER],
        "emails": [{"value": "bjensen@example.com"}],
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "groups": [{"value": "Sales"}, {"value": "Admins"}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
    }
    assert read.variables["entityIdSourceSystem"] == "bjensen"
    written = run("ldap", "write", "user", read.document)
    assert written.document == {
        "uid": ["bjensen"],
        "cn": ["bjensen"],
        "mail": ["bjensen@example.com"],
        "givenName": ["Barbara"],
        "sn": ["Jensen"],
        "mobile": ["+1 555 0100"],
    }
    assert written.variables["entityIdTargetSystem"] == "bjensen"
    no_surname = run("ldap", "write", "user", {"userName": "x"}, operation="update")
    assert no_surname.document == {"uid": ["x"], "sn": ["-"]}


def test_ldap_write_group_members_become_dns() -> None:
    outcome = run("ldap", "write", "group", SCIM_GROUP, unignore=True)
    assert outcome.document == {
        "cn": ["Sales"],
        "member": [
            "uid=T-u1,ou=people,dc=example,dc=org",
            "uid=T-u2,ou=people,dc=example,dc=org",
            "uid=T-g9,ou=groups,dc=example,dc=org",
        ],
    }


def test_microsoft_ad_read_only_sets_phone_numbers_that_exist() -> None:
    entry = {
        "uid": ["bjensen"],
        "sAMAccountName": ["bjensen"],
        "distinguishedName": ["CN=bjensen,OU=Sales,ou=people,dc=example,dc=org"],
        "userPrincipalName": ["bjensen@example.org"],
        "telephoneNumber": ["+1 555 0101"],
    }
    outcome = run("microsoft-ad", "read", "user", entry, operation="read")
    assert outcome.document == {
        "userName": "bjensen",
        "schemas": [CORE_USER],
        "phoneNumbers": [{"value": "+1 555 0101", "type": "work"}],
        "urn:sap:cloud:scim:schemas:extension:ad:2.0:User": {
            "nestedPath": "OU=Sales",
            "userPrincipalName": "bjensen@example.org",
        },
    }


def test_microsoft_ad_write() -> None:
    outcome = run("microsoft-ad", "write", "user", INTERNAL_USER)
    assert outcome.document["sAMAccountName"] == ["bjensen"]
    assert outcome.document["userPrincipalName"] == ["bjensen@example.com"]
    assert "unicodePwd" not in outcome.document


@pytest.mark.parametrize(
    ("operation", "active", "password", "control"),
    [
        ("create", True, "s3cret!", "512"),  # enabled, with its password
        ("create", True, None, "514"),  # AD enables no account without a password
        ("create", False, "s3cret!", "514"),
        ("create", None, None, "514"),
        ("update", True, None, "512"),  # the account has its password already
        ("update", False, None, "514"),
        ("update", None, None, None),  # nothing said: left as it is
    ],
)
def test_microsoft_ad_write_maps_active_to_user_account_control(
    operation: str, active: bool | None, password: str | None, control: str | None
) -> None:
    user = {k: v for k, v in INTERNAL_USER.items() if k != "active"}
    if active is not None:
        user["active"] = active
    if password is not None:
        user["password"] = password
    document = run("microsoft-ad", "write", "user", user, operation=operation).document
    assert document.get("userAccountControl") == ([control] if control else None)
    assert document.get("unicodePwd") == ([password] if password else None)  # the connector
    # quotes and encodes it (UTF-16-LE) and sends it only over TLS


def test_microsoft_ad_write_names_new_groups_by_sam_account_name() -> None:
    create = run("microsoft-ad", "write", "group", SCIM_GROUP, unignore=True)
    assert create.document["sAMAccountName"] == ["Sales"]
    assert create.document["cn"] == ["Sales"]
    update = run("microsoft-ad", "write", "group", SCIM_GROUP, "update", unignore=True)
    assert "sAMAccountName" not in update.document  # set on create: a new name keeps it


def test_csv_read_and_write() -> None:
    row = {"id": "7", "userName": "jdoe", "name": {"familyName": "Doe"}}
    read = run("csv", "read", "user", row, operation="read")
    assert read.document == {
        "userName": "jdoe",
        "name": {"familyName": "Doe"},
        "schemas": [CORE_USER],
    }
    written = run(
        "csv", "write", "user", read.document, operation="update", entityIdTargetSystem="7"
    )
    assert written.document == {"userName": "jdoe", "name": {"familyName": "Doe"}, "id": "7"}
    group = run(
        "csv", "write", "group", SCIM_GROUP, operation="update", entityIdTargetSystem="T-g1"
    )
    assert group.document == {
        "id": "T-g1",
        "displayName": "Sales",
        "members": [{"value": "T-u1"}, {"value": "T-u2"}, {"value": "T-g9"}],
    }


# -- any JSON through every default ---------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "id",
        "userName",
        "emails",
        "value",
        "primary",
        "name",
        "familyName",
        "members",
        "type",
        "addresses",
        "uid",
        "mail",
        "sn",
        "memberOf",
        "displayName",
        ENTERPRISE,
        SAP_USER,
        "manager",
        "Operations",
        "schemas",
    ]
)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
DEFAULTS = [Transformation(default_transformation(c, r), LDAP_PROPERTIES) for c, r in available()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entity=JSON,
    entity_type=st.sampled_from(["user", "group"]),
    operation=st.sampled_from(["read", "create", "update", "patch", "delete"]),
)
def test_any_json_gives_an_outcome(entity: Any, entity_type: str, operation: str) -> None:
    before = copy.deepcopy(entity)
    for transformation in DEFAULTS:
        outcome = transformation.apply(
            entity_type,
            entity,
            operation=operation,
            resolver=Resolver(),
            variables={"entityIdTargetSystem": "T"},
        )
        assert isinstance(outcome, Transformed | Skipped | Failed | Ignored | Deleted)
        if isinstance(outcome, Transformed):
            json.dumps(outcome.document)
    assert entity == before
