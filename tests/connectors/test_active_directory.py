"""Writes of the Microsoft Active Directory connector with its default transformation, against
a real slapd that has AD's classes (``user``, ``group``) and attributes (``sAMAccountName``,
``userPrincipalName``, ``unicodePwd``, ``userAccountControl``) in a test schema.

slapd stores what it is sent, so the tests see the bytes AD would get (the quoted UTF-16-LE
password); AD's own checks (password policy, enabling an account) cannot run here.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any

import ldap  # type: ignore[import-untyped]
import pytest

from provisor.connectors.base import ConnectorConfig, InvalidEntity, Role
from provisor.connectors.ldap.connector import ActiveDirectoryConnector
from provisor.connectors.ldap.types import MICROSOFT_AD
from provisor.transform import Transformation, Transformed
from provisor.transform.defaults import default_transformation
from tests.connectors.ldap_server import LDAPServer, running_slapd

# Private OIDs for the test schema (1.3.6.1.4.1.55555 is no registered enterprise of ours).
AD_SCHEMA = """
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'userPrincipalName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'unicodePwd'
    EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.4 NAME 'userAccountControl'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'user' SUP organizationalPerson STRUCTURAL
    MUST sAMAccountName
    MAY ( userPrincipalName $ unicodePwd $ userAccountControl $ mail $ givenName $
          displayName $ mobile ) )
objectclass ( 1.3.6.1.4.1.55555.2.2 NAME 'group' SUP top STRUCTURAL
    MUST cn MAY ( member $ sAMAccountName $ description ) )
"""
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [{"value": "bjensen@example.com", "primary": True}],
    "active": True,
    "password": "Pa55-wörd!",
}
ids = itertools.count(1)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LDAPServer]:
    with running_slapd(tmp_path_factory.mktemp("slapd-ad"), schema=AD_SCHEMA) as server:
        yield server


@pytest.fixture
def paths(slapd: LDAPServer) -> dict[str, str]:
    """A test's own OU with its users and groups."""
    base = f"ou=ad{next(ids)},{slapd.suffix}"
    people, groups = f"ou=people,{base}", f"ou=groups,{base}"
    slapd.add((dn, {"objectClass": ["organizationalUnit"]}) for dn in (base, people, groups))
    return {
        "ldap.url": slapd.ldaps_url,
        "ldap.tls.ca.file": str(slapd.ca_file),
        "ldap.user": slapd.bind_dn,
        "ldap.password": slapd.password,
        "ldap.user.path": people,
        "ldap.group.path": groups,
    }


def connector(slapd: LDAPServer, properties: dict[str, str]) -> ActiveDirectoryConnector:
    files = {"data_dir": slapd.ca_file.parent}
    config = ConnectorConfig("sys-ad", "AD", Role.TARGET, properties, files)
    return ActiveDirectoryConnector(config)


def written(
    properties: dict[str, str], entity_type: str, entity: dict[str, Any], operation: str
) -> Transformed:
    """An entity through the default write transformation of Active Directory (groups, which
    it ignores, included)."""
    document = json.loads(default_transformation("microsoft-ad", "write"))
    document[entity_type]["ignore"] = False
    transformation = Transformation(document, MICROSOFT_AD.effective(properties))
    outcome = transformation.apply(
        entity_type, copy.deepcopy(entity), operation=operation, resolver=Resolver()
    )
    assert isinstance(outcome, Transformed), outcome
    return outcome


class Resolver:
    """The target ids of users are their source ids."""

    def resolve(self, ids: Any, **_: Any) -> dict[str, str]:
        return {i: i for i in ids}


@pytest.mark.anyio
async def test_default_write_creates_a_user_with_its_password(
    slapd: LDAPServer, paths: dict[str, str]
) -> None:
    create = written(paths, "user", USER, "create")
    async with connector(slapd, paths) as target:
        created = await target.create(
            "user", create.document, entity_id=create.variables["entityIdTargetSystem"]
        )
        assert created.id == "bjensen"
        assert created.entity is not None and "unicodePwd" not in created.entity
        entry = entry_of(slapd, f"cn=bjensen,{paths['ldap.user.path']}")
        assert entry["objectClass"] == [b"user"]
        assert entry["sAMAccountName"] == [b"bjensen"]
        assert entry["userPrincipalName"] == [b"bjensen@example.com"]
        assert entry["unicodePwd"] == ['"Pa55-wörd!"'.encode("utf-16-le")]
        assert entry["userAccountControl"] == [b"512"]
        # Deactivated: disabled (514); the update carries no password, the old one stays.
        inactive = {k: v for k, v in USER.items() if k != "password"} | {"active": False}
        update = written(paths, "user", inactive, "update")
        await target.update("user", "bjensen", update.document, previous=create.document)
        entry = entry_of(slapd, f"cn=bjensen,{paths['ldap.user.path']}")
        assert entry["userAccountControl"] == [b"514"]
        assert entry["unicodePwd"] == ['"Pa55-wörd!"'.encode("utf-16-le")]


@pytest.mark.anyio
async def test_a_user_created_without_a_password_is_disabled(
    slapd: LDAPServer, paths: dict[str, str]
) -> None:
    user = {k: v for k, v in USER.items() if k != "password"}
    create = written(paths, "user", user, "create")
    async with connector(slapd, paths) as target:
        await target.create("user", create.document, entity_id="bjensen")
    entry = entry_of(slapd, f"cn=bjensen,{paths['ldap.user.path']}")
    assert entry["userAccountControl"] == [b"514"] and "unicodePwd" not in entry


@pytest.mark.anyio
async def test_default_write_creates_a_group_with_member_dns(
    slapd: LDAPServer, paths: dict[str, str]
) -> None:
    group = {"displayName": "Sales", "members": [{"value": "bjensen", "type": "User"}]}
    create = written(paths, "group", group, "create")
    async with connector(slapd, paths) as target:
        await target.create("user", written(paths, "user", USER, "create").document)
        await target.create("group", create.document, entity_id="Sales")
    entry = entry_of(slapd, f"cn=Sales,{paths['ldap.group.path']}")
    assert entry["objectClass"] == [b"group"] and entry["sAMAccountName"] == [b"Sales"]
    assert entry["member"] == [f"cn=bjensen,{paths['ldap.user.path']}".encode()]


@pytest.mark.anyio
async def test_passwords_go_only_over_tls(slapd: LDAPServer, paths: dict[str, str]) -> None:
    plain = {**paths, "ldap.url": slapd.url}
    create = written(plain, "user", USER, "create")
    async with connector(slapd, plain) as target:
        with pytest.raises(InvalidEntity, match=r"only over an encrypted connection.*starttls"):
            await target.create("user", create.document, entity_id="bjensen")
    assert entry_of(slapd, f"cn=bjensen,{paths['ldap.user.path']}") == {}
    starttls = {**plain, "ldap.ssl.mode": "starttls"}
    async with connector(slapd, starttls) as target:
        await target.create("user", create.document, entity_id="bjensen")
    entry = entry_of(slapd, f"cn=bjensen,{paths['ldap.user.path']}")
    assert entry["unicodePwd"] == ['"Pa55-wörd!"'.encode("utf-16-le")]


@pytest.mark.anyio
async def test_account_names_follow_active_directory_rules(
    slapd: LDAPServer, paths: dict[str, str]
) -> None:
    async with connector(slapd, paths) as target:
        long_name = written(paths, "user", {**USER, "userName": "a" * 21}, "create")
        with pytest.raises(InvalidEntity, match=r"has 21 characters: .* at most 20 for a user"):
            await target.create("user", long_name.document, entity_id="a" * 21)
        odd = written(paths, "user", {**USER, "userName": "ann[1]"}, "create")
        with pytest.raises(InvalidEntity, match=r"'ann\[1\]' contains \[ \]"):
            await target.create("user", odd.document, entity_id="ann[1]")
        exact = written(paths, "user", {**USER, "userName": "b" * 20}, "create")
        assert (await target.create("user", exact.document, entity_id="b" * 20)).id == "b" * 20
        group = written(paths, "group", {"displayName": "g" * 40}, "create")
        await target.create("group", group.document, entity_id="g" * 40)  # 20 is for users


def entry_of(slapd: LDAPServer, dn: str) -> dict[str, list[bytes]]:
    """An entry's attributes as the server holds them (bytes), or {} when there is none."""
    conn = slapd.connect()
    try:
        found = conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)")
    except ldap.NO_SUCH_OBJECT:
        return {}
    finally:
        conn.unbind_s()
    return dict(found[0][1])
