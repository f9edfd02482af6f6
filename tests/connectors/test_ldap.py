"""The LDAP Server and Active Directory connectors against a real slapd (started per module).

Each test works in its own OU (``ou=tN,dc=example,dc=org`` with ``ou=people`` and
``ou=groups``), so tests share one server and stay apart. Only Active Directory's own server
features (uSNChanged, highestCommittedUSN, ranged retrieval) are tested without a server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ldap  # type: ignore[import-untyped]
import pytest

from provisor.connectors.base import (
    AuthenticationFailed,
    ConnectionFailed,
    Connector,
    ConnectorConfig,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    Page,
    Role,
)
from provisor.connectors.ldap.client import Session
from provisor.connectors.ldap.connector import ActiveDirectoryConnector, LDAPConnector
from provisor.connectors.ldap.deltas import DeltaToken, changed_members, fingerprint, member_key
from provisor.connectors.ldap.dialects import ActiveDirectory, Dialect, InvalidDeltaToken
from provisor.connectors.ldap.memberships import Group, GroupIndex, flattened_members
from provisor.connectors.ldap.types import LDAP, MICROSOFT_AD
from provisor.connectors.ldap.values import split_range
from provisor.connectors.types import Kind
from provisor.errors import ConfigError
from provisor.transform import Transformation, Transformed
from provisor.transform.defaults import default_transformation
from tests.connectors.ldap_server import LDAPServer, free_port, running_slapd

ids = itertools.count(1)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LDAPServer]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


# The Active Directory connector on slapd: inetOrgPerson and groupOfNames stand for user and group.
AD_ON_SLAPD = {"ldap.user.object.class": "inetOrgPerson", "ldap.group.object.class": "groupOfNames"}


@dataclass
class Tree:
    """A test's own OU in the shared server."""

    server: LDAPServer
    base: str
    people: str
    groups: str

    @property
    def properties(self) -> dict[str, str]:
        return {
            "ldap.url": self.server.url,
            "ldap.user": self.server.bind_dn,
            "ldap.password": self.server.password,
            "ldap.user.path": self.people,
            "ldap.group.path": self.groups,
        }

    def connector(self, role: Role = Role.TARGET, /, **properties: str) -> LDAPConnector:
        return LDAPConnector(self.config(role, properties))

    def ad_connector(self, role: Role = Role.SOURCE, /, **properties: str) -> LDAPConnector:
        return ActiveDirectoryConnector(self.config(role, {**AD_ON_SLAPD, **properties}))

    def config(self, role: Role, properties: dict[str, str]) -> ConnectorConfig:
        files = {"data_dir": self.server.ca_file.parent}  # ldap.tls.ca.file lies there
        return ConnectorConfig("sys-1", "Test LDAP", role, {**self.properties, **properties}, files)

    def user(self, uid: str, **extra: list[str | bytes]) -> tuple[str, dict[str, Any]]:
        return f"uid={uid},{self.people}", {
            "objectClass": ["inetOrgPerson"],
            "uid": [uid],
            "cn": [f"User {uid}"],
            "sn": ["Test"],
            "mail": [f"{uid}@example.org"],
            **extra,
        }

    def group(self, cn: str, members: list[str], at: str | None = None) -> tuple[str, Any]:
        return f"cn={cn},{at or self.groups}", {
            "objectClass": ["groupOfNames"],
            "cn": [cn],
            "member": members,
        }


def ou(dn: str) -> tuple[str, dict[str, Any]]:
    return dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]}


@pytest.fixture
def tree(slapd: LDAPServer) -> Tree:
    base = f"ou=t{next(ids)},{slapd.suffix}"
    tree = Tree(slapd, base, f"ou=people,{base}", f"ou=groups,{base}")
    slapd.add([ou(base), ou(tree.people), ou(tree.groups)])
    return tree


async def read_all(connector: Connector, entity_type: str, delta: str | None = None) -> list[Page]:
    return [page async for page in connector.read(entity_type, delta=delta)]


def by_id(pages: list[Page], attribute: str = "uid") -> dict[str, dict[str, Any]]:
    return {e[attribute][0]: e for page in pages for e in page.entities}


# -- reads ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_full_read_pages_users_with_their_groups(tree: Tree) -> None:
    users = [tree.user(f"u{i:03}") for i in range(250)]
    users[0][1]["jpegPhoto"] = [b"\xff\xd8\xff\xe0"]
    users[0][1]["userPassword"] = ["{SSHA}secret-hash"]
    elsewhere = f"ou=elsewhere,{tree.base}"
    tree.server.add(
        [
            *users,
            ou(elsewhere),
            tree.group("Sales", [dn for dn, _ in users[:10]]),
            tree.group("Admins", [users[0][0], users[1][0]]),
            tree.group("Outside", [users[0][0]], at=elsewhere),
        ]
    )
    async with tree.connector(Role.SOURCE, **{"ldap.page.size": "100"}) as source:
        pages = await read_all(source, "user")
    assert [len(p.entities) for p in pages] == [100, 100, 50]
    assert [p.delta_token is not None for p in pages] == [False, False, True]
    users_read = by_id(pages)
    assert len(users_read) == 250
    first = users_read["u000"]
    assert first["dn"] == f"uid=u000,{tree.people}"
    assert first["distinguishedName"] == [first["dn"]]
    assert first["objectClass"] == ["inetOrgPerson"]
    assert first["mail"] == ["u000@example.org"]
    assert sorted(first["memberOf"]) == ["Admins", "Sales"]  # not Outside: not under the path
    assert first["jpegPhoto"] == ["/9j/4A=="]  # binary values are base64
    assert "userPassword" not in first and "modifyTimestamp" not in first
    assert users_read["u005"]["memberOf"] == ["Sales"]
    assert "memberOf" not in users_read["u100"]
    assert all(
        isinstance(v, list) and all(isinstance(x, str) for x in v)
        for e in users_read.values()
        for k, v in e.items()
        if k != "dn"
    )


@pytest.mark.anyio
async def test_read_groups_names_members_like_the_users_ids(tree: Tree) -> None:
    renamed = f"cn=Carol Jones,{tree.people}"  # RDN is cn: its uid is read from the entry
    tree.server.add(
        [
            tree.user("alice"),
            tree.user("bob"),
            (renamed, {**tree.user("carol")[1], "cn": ["Carol Jones"]}),
            tree.group("Nested", [f"uid=bob,{tree.people}"]),
            tree.group(
                "Team",
                [f"uid=alice,{tree.people}", renamed, f"cn=Nested,{tree.groups}"],
            ),
        ]
    )
    async with tree.connector(Role.SOURCE) as source:
        groups = by_id(await read_all(source, "group"), "cn")
        team = await source.get("group", "Team")
    assert sorted(groups["Team"]["member"]) == ["Nested", "alice", "carol"]
    assert groups["Nested"]["member"] == ["bob"]
    assert team is not None and sorted(team["member"]) == ["Nested", "alice", "carol"]
    dns = tree.connector(Role.SOURCE, **{"ldap.member.uniquename.attribute": "distinguishedName"})
    async with dns as source:
        groups = by_id(await read_all(source, "group"), "cn")
    assert f"uid=alice,{tree.people}" in groups["Team"]["member"]


async def next_second() -> None:
    """Wait until the server's clock (ours) enters the next second (modifyTimestamp unit)."""
    await asyncio.sleep(1.02 - time.time() % 1)


@pytest.mark.anyio
async def test_delta_read_returns_what_changed_since_the_token(tree: Tree) -> None:
    tree.server.add([tree.user(f"d{i}") for i in range(5)])
    async with tree.connector(Role.SOURCE) as source:
        await next_second()
        await source.update("user", "d1", {"title": ["first"]})
        full = await read_all(source, "user")
        token = full[-1].delta_token
        assert token is not None and DeltaToken.parse(token).marker.endswith("Z")
        await next_second()
        await source.update("user", "d3", {"title": ["second"]})
        delta = await read_all(source, "user", delta=token)
        # d1 changed in the token's second: read again (>=) rather than risk missing a change
        assert sorted(by_id(delta)) == ["d1", "d3"]
        following = delta[-1].delta_token
        assert following is not None
        assert DeltaToken.parse(following).marker > DeltaToken.parse(token).marker
        with pytest.raises(InvalidDeltaToken):
            await read_all(source, "user", delta="1)(uid=*")


def modify_members(tree: Tree, group: str, operation: int, *members: str) -> None:
    """Add or remove members as another LDAP client would: only the group entry changes."""
    conn = tree.server.connect()
    try:
        values = [m.encode() for m in members]
        conn.modify_s(f"cn={group},{tree.groups}", [(operation, "member", values)])
    finally:
        conn.unbind_s()


async def membership_baseline(tree: Tree, source: LDAPConnector) -> str:
    """A full read whose token lies a second after the users' creation (so a delta read
    returns only what changed later) and the token."""
    await next_second()
    await source.update("user", "zed", {"title": ["marks the token's second"]})
    token = (await read_all(source, "user"))[-1].delta_token
    assert token is not None
    await next_second()
    return token


@pytest.mark.anyio
async def test_delta_read_returns_users_whose_groups_changed(tree: Tree) -> None:
    users = {name: tree.user(name) for name in ("ann", "ben", "cid", "zed")}
    dns = {name: dn for name, (dn, _) in users.items()}
    tree.server.add(
        [*users.values(), tree.group("Sales", [dns["ann"]]), tree.group("Ops", [dns["cid"]])]
    )
    async with tree.connector(Role.SOURCE) as source:
        token = await membership_baseline(tree, source)
        modify_members(tree, "Sales", ldap.MOD_ADD, dns["ben"])
        pages = await read_all(source, "user", delta=token)
        delta = by_id(pages)
        assert sorted(delta) == ["ben", "zed"]  # zed: changed in the token's second
        assert delta["ben"]["memberOf"] == ["Sales"]
        following = pages[-1].delta_token
        assert following is not None
        await next_second()
        modify_members(tree, "Sales", ldap.MOD_DELETE, dns["ben"])
        conn = tree.server.connect()
        conn.delete_s(f"cn=Ops,{tree.groups}")  # cid's only group: nothing of cid changes
        conn.rename_s(f"cn=Sales,{tree.groups}", "cn=Revenue")  # ann's group, renamed
        conn.unbind_s()
        pages = await read_all(source, "user", delta=following)
        delta = by_id(pages)
        assert sorted(set(delta) - {"zed"}) == ["ann", "ben", "cid"]
        assert "memberOf" not in delta["ben"] and "memberOf" not in delta["cid"]
        assert delta["ann"]["memberOf"] == ["Revenue"]
        again = by_id(await read_all(source, "user", delta=pages[-1].delta_token))
        assert set(again) <= {"zed"}  # nothing changed since


@pytest.mark.anyio
async def test_changes_after_a_time_list_users_who_joined_a_group(tree: Tree) -> None:
    """What a proxy asks (meta.lastModified gt T): a token from a time has no snapshot, so
    the members of the groups changed since T come with the users changed since T."""
    users = {name: tree.user(name) for name in ("ann", "ben", "zed")}
    sales, ops = (tree.group(name, [users["ann"][0]]) for name in ("Sales", "Ops"))
    tree.server.add([*users.values(), sales, ops])
    async with tree.connector(Role.SOURCE) as source:
        await next_second()
        since = datetime.now(UTC).isoformat()
        modify_members(tree, "Sales", ldap.MOD_ADD, users["ben"][0])
        modify_members(tree, "Ops", ldap.MOD_ADD, users["ben"][0])
        changed = await source.slice("user", modified_after=since)
    listed = [e["uid"][0] for e in changed.entities]
    assert sorted(listed) == ["ann", "ben"]  # the members of Sales and Ops now, once each
    assert sorted(changed.entities[listed.index("ben")]["memberOf"]) == ["Ops", "Sales"]


@pytest.mark.anyio
async def test_flattened_delta_read_returns_the_groups_above_a_changed_one(tree: Tree) -> None:
    people = {name: f"cn={name},{tree.people}" for name in ("ann", "ben", "zed")}
    tree.server.add(
        [
            *((dn, {**tree.user(name)[1], "cn": [name]}) for name, dn in people.items()),
            tree.group("Parent", [people["ann"], f"cn=Child,{tree.groups}"]),
            tree.group("Child", [people["ann"]]),
            tree.group("Apart", [people["zed"]]),
        ]
    )
    async with tree.ad_connector(Role.SOURCE, **{"ad.group.flatten": "true"}) as source:
        source._directory.dialect = Dialect()  # slapd has modifyTimestamp, not uSNChanged
        await next_second()
        await source.update("group", "Apart", {"description": ["marks the token's second"]})
        token = (await read_all(source, "group"))[-1].delta_token
        assert token is not None
        await next_second()
        modify_members(tree, "Child", ldap.MOD_ADD, people["ben"])
        groups = by_id(await read_all(source, "group", delta=token), "cn")
    assert sorted(groups) == ["Apart", "Child", "Parent"]  # Apart: in the token's second
    assert sorted(groups["Parent"]["member"]) == ["ann", "ben"]


@pytest.mark.anyio
async def test_api_version_2_reads_the_listed_attributes(tree: Tree) -> None:
    tree.server.add([tree.user("v2", title=["Boss"])])
    properties = {"ldap.api.version": "2", "ldap.user.attributes": "mail,title"}
    async with tree.connector(Role.SOURCE, **properties) as source:
        (page,) = await read_all(source, "user")
    (user,) = page.entities
    assert set(user) == {"dn", "distinguishedName", "objectClass", "uid", "mail", "title"}


@pytest.mark.anyio
async def test_get_and_find_escape_filter_values(tree: Tree) -> None:
    tree.server.add(
        [
            tree.user("star", cn=["a*b(c)"]),
            tree.user("other", cn=["aXb(c)"]),
            tree.user("paren", cn=["a*b"]),
        ]
    )
    async with tree.connector() as target:
        found = await target.find("user", "cn", "a*b(c)")
        assert [e["uid"] for e in found] == [["star"]]
        assert [e["uid"] for e in await target.find("user", "mail", "other@example.org")] == [
            ["other"]
        ]
        by_dn = await target.find("user", "distinguishedName", f"uid=paren,{tree.people}")
        assert [e["uid"] for e in by_dn] == [["paren"]]
        assert await target.find("user", "uid", "*") == []
        star = await target.get("user", "star")
        assert star is not None and star["cn"] == ["a*b(c)"]
        assert await target.get("user", "nobody") is None
        assert await target.get("group", "nothing") is None


# -- writes ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_escapes_the_dn_and_adds_the_object_class(tree: Tree) -> None:
    entity = {
        "uid": ["Smith, John"],
        "cn": "Smith, John",
        "sn": ["Smith"],
        "mail": ["john@example.org", "js@example.org"],
        "description": [],
        "title": "",
    }
    async with tree.connector() as target:
        written = await target.create("user", entity, entity_id="Smith, John")
        assert written.id == "Smith, John"
        dn = f"uid=Smith\\, John,{tree.people}"
        assert written.entity is not None and written.entity["dn"] == dn
        entry = tree.server.entry(dn)
        assert entry is not None
        assert entry["objectClass"] == ["inetOrgPerson"]
        assert sorted(entry["mail"]) == ["john@example.org", "js@example.org"]
        assert "description" not in entry and "title" not in entry
        got = await target.get("user", "Smith, John")
        assert got is not None and got["sn"] == ["Smith"]
        with pytest.raises(EntityConflict, match="already exists"):
            await target.create("user", entity, entity_id="Smith, John")


@pytest.mark.anyio
async def test_proxy_answers_creates_and_updates_with_the_entry_read_back(tree: Tree) -> None:
    tree.server.add([tree.group("Readers", [f"uid=px,{tree.people}"])])
    async with tree.connector(Role.PROXY) as proxy:
        created = await proxy.create("user", {"cn": ["px"], "sn": ["P"]}, entity_id="px")
        assert created.entity is not None and created.entity["memberOf"] == ["Readers"]
        updated = await proxy.update("user", "px", {"sn": ["Q"]})
        assert updated.entity is not None and updated.entity["sn"] == ["Q"]
    properties = {"ldap.respond.with.resource.after.update": "false"}
    async with tree.connector(Role.PROXY, **properties) as proxy:
        assert (await proxy.update("user", "px", {"sn": ["R"]})).entity is None


@pytest.mark.anyio
async def test_schema_violations_are_invalid_entities(tree: Tree) -> None:
    async with tree.connector() as target:
        with pytest.raises(InvalidEntity, match="requires attribute 'sn'"):
            await target.create("user", {"uid": ["nosn"], "cn": ["x"]}, entity_id="nosn")
        with pytest.raises(InvalidEntity, match="shoeSize"):
            await target.create(
                "user", {"cn": ["x"], "sn": ["y"], "shoeSize": ["42"]}, entity_id="odd"
            )
        with pytest.raises(InvalidEntity, match="not an LDAP attribute name"):
            await target.create("user", {"cn": ["x"], "sn": ["y"], "a b": ["1"]}, entity_id="z")


@pytest.mark.anyio
async def test_update_replaces_removes_and_renames(tree: Tree) -> None:
    dn, attrs = tree.user("jdoe", title=["Clerk"], mobile=["+1 555 0100"])
    tree.server.add([(dn, attrs)])
    previous = {"uid": ["jdoe"], "cn": ["User jdoe"], "sn": ["Test"], "mobile": ["+1 555 0100"]}
    async with tree.connector() as target:
        written = await target.update(
            "user",
            "jdoe",
            {"uid": ["jdoe"], "sn": ["Doe"], "mail": ["jd@example.org"]},
            previous=previous,
        )
        assert written.id == "jdoe"
        entry = tree.server.entry(dn)
        assert entry is not None
        assert entry["sn"] == ["Doe"] and entry["mail"] == ["jd@example.org"]
        assert "mobile" not in entry  # in previous, not now: removed
        assert entry["title"] == ["Clerk"]  # never written: left alone
        assert entry["cn"] == ["User jdoe"]  # required (create-only) attribute: kept

        renamed = await target.update("user", "jdoe", {"uid": ["john.doe"], "sn": ["Doe"]})
        assert renamed.id == "john.doe"
        assert tree.server.entry(dn) is None
        entry = tree.server.entry(f"uid=john.doe,{tree.people}")
        assert entry is not None and entry["uid"] == ["john.doe"]
        with pytest.raises(EntityNotFound):
            await target.update("user", "jdoe", {"sn": ["x"]})


@pytest.mark.anyio
async def test_update_of_a_group_sends_member_changes(tree: Tree) -> None:
    users = [tree.user(f"m{i}") for i in range(4)]
    tree.server.add([*users, tree.group("Crew", [users[0][0], users[1][0]])])
    calls: list[Any] = []
    async with tree.connector() as target:
        original = Session.modify

        def spy(self: Session, dn: str, changes: Any, permissive: bool = False) -> None:
            calls.append(changes)
            original(self, dn, changes, permissive)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Session, "modify", spy)
            await target.update(
                "group",
                "Crew",
                {"cn": ["Crew"], "member": [users[1][0], users[2][0], "m3"]},
                previous={"cn": ["Crew"], "member": [users[0][0], users[1][0]]},
            )
    entry = tree.server.entry(f"cn=Crew,{tree.groups}")
    assert entry is not None and sorted(entry["member"]) == sorted(dn for dn, _ in users[1:])
    assert len(calls) == 1  # one modify: add m2, m3 and delete m0


@pytest.mark.anyio
async def test_delete_and_delete_again(tree: Tree) -> None:
    tree.server.add([tree.user("gone")])
    async with tree.connector() as target:
        await target.delete("user", "gone")
        assert tree.server.entry(f"uid=gone,{tree.people}") is None
        with pytest.raises(EntityNotFound):
            await target.delete("user", "gone")


@pytest.mark.anyio
async def test_change_members_of_a_large_group_in_batches(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [tree.user(f"b{i:04}") for i in range(1200)]
    dns = [dn for dn, _ in users]
    tree.server.add([*users, tree.group("Big", dns[:1])])
    sizes: list[int] = []
    original = Session.modify

    def spy(self: Session, dn: str, changes: Any, permissive: bool = False) -> None:
        sizes.append(sum(len(values or ()) for _, _, values in changes))
        original(self, dn, changes, permissive)

    monkeypatch.setattr(Session, "modify", spy)
    async with tree.connector() as target:
        # dns[0] is a member already; "b1199" is a unique name (a DN is built from it)
        await target.change_members("Big", add=[*dns[:1199], "b1199"])
        gone = f"uid=never-a-member,{tree.people}"
        await target.change_members("Big", remove=[*dns[1000:], gone])
    entry = tree.server.entry(f"cn=Big,{tree.groups}")
    assert entry is not None and sorted(entry["member"]) == dns[:1000]
    assert max(sizes) <= 100
    assert len([s for s in sizes if s == 100]) >= 12 + 2  # 1,200 adds and 200 removes


# -- connection and errors ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_connection_ok(tree: Tree) -> None:
    async with tree.connector() as target:
        text = await target.test_connection()
    assert text == (
        f"Bound as {tree.server.bind_dn} to {tree.server.url}; {tree.people} and "
        f"{tree.groups} are readable"
    )


@pytest.mark.anyio
async def test_connection_to_a_missing_path_says_which(tree: Tree) -> None:
    async with tree.connector(**{"ldap.group.path": f"ou=nope,{tree.base}"}) as target:
        with pytest.raises(Exception, match=r"ldap.group.path ou=nope,.* does not exist"):
            await target.test_connection()


@pytest.mark.anyio
async def test_bad_password(tree: Tree) -> None:
    async with tree.connector(**{"ldap.password": "wrong-horse"}) as target:
        with pytest.raises(AuthenticationFailed) as failed:
            await target.test_connection()
    assert "Invalid credentials" in str(failed.value)
    assert tree.server.bind_dn in str(failed.value)
    assert "wrong-horse" not in str(failed.value)


@pytest.mark.anyio
async def test_bind_dn_without_password(tree: Tree) -> None:
    async with tree.connector(**{"ldap.password": ""}) as target:
        with pytest.raises(AuthenticationFailed, match=r"ldap\.password is empty"):
            await target.test_connection()


@pytest.mark.anyio
async def test_unreachable_port(tree: Tree) -> None:
    url = f"ldap://127.0.0.1:{free_port()}"
    async with tree.connector(**{"ldap.url": url}) as target:
        with pytest.raises(ConnectionFailed, match=f"cannot connect to {url}: connection refused"):
            await target.test_connection()


@pytest.mark.anyio
async def test_server_that_does_not_answer(tree: Tree) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        target = tree.connector(**{"ldap.url": url, "com.sun.jndi.ldap.read.timeout": "300"})
        async with target:
            with pytest.raises(ConnectionFailed, match=r"did not answer the bind within 0\.3 s"):
                await target.test_connection()


@pytest.mark.anyio
async def test_ldaps_with_the_ca_file(tree: Tree) -> None:
    properties = {"ldap.url": tree.server.ldaps_url, "ldap.tls.ca.file": str(tree.server.ca_file)}
    async with tree.connector(**properties) as target:
        assert (await target.test_connection()).startswith("Bound as")
        assert await target.get("user", "nobody") is None


@pytest.mark.anyio
async def test_ldaps_with_an_untrusted_certificate(tree: Tree) -> None:
    url = tree.server.ldaps_url
    async with tree.connector(**{"ldap.url": url}) as target:
        with pytest.raises(ConnectionFailed) as failed:
            await target.test_connection()
    assert str(failed.value).startswith(f"TLS handshake with {url} failed: certificate verify")


@pytest.mark.anyio
async def test_ldaps_trusting_all(tree: Tree) -> None:
    properties = {"ldap.url": tree.server.ldaps_url, "ldap.tls.trust.all": "true"}
    async with tree.connector(**properties) as target:
        assert (await target.test_connection()).startswith("Bound as")


@pytest.mark.anyio
async def test_starttls(tree: Tree) -> None:
    properties = {"ldap.ssl.mode": "starttls", "ldap.tls.ca.file": str(tree.server.ca_file)}
    async with tree.connector(**properties) as target:
        assert (await target.test_connection()).startswith("Bound as")
    async with tree.connector(**{"ldap.ssl.mode": "starttls"}) as target:
        with pytest.raises(ConnectionFailed, match=r"StartTLS with .* failed: certificate verify"):
            await target.test_connection()


def test_settings_are_checked(tree: Tree) -> None:
    with pytest.raises(ConfigError, match="ldaps needs an ldaps:// URL"):
        tree.connector(**{"ldap.ssl.mode": "ldaps"})
    with pytest.raises(ConfigError, match=r"ldap\.page\.size: at most 1000"):
        tree.connector(**{"ldap.page.size": "5000"})
    with pytest.raises(ConfigError, match=r"ldap\.url"):
        tree.connector(**{"ldap.url": "http://x"})


def test_missing_python_ldap_is_a_config_error(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ldap", None)  # import ldap now raises ImportError
    with pytest.raises(ConfigError) as failed:
        tree.connector()
    assert "pip install 'provisor[ldap]'" in str(failed.value)
    assert "apt-get install libldap2-dev libsasl2-dev" in str(failed.value)


def test_types_and_the_connector_module_do_not_import_python_ldap() -> None:
    code = (
        "import sys, provisor.connectors.ldap.types, provisor.connectors.ldap.connector;"
        " print('ldap' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_connector_types_declare_the_spec_properties() -> None:
    assert LDAP.name == "LDAP Server" and MICROSOFT_AD.name == "Microsoft Active Directory"
    url = LDAP.spec("ldap.url")
    assert url is not None and url.kind is Kind.URL and url.check("ldaps://dc:636") is None
    assert LDAP.credential_keys >= {"ldap.password"}
    seeded = LDAP.seeded_properties(Role.TARGET)
    assert seeded["ldap.attribute.user.id"] == "uid"
    assert seeded["ldap.member.uniquename.attribute"] == "uid"
    assert seeded["ldap.attribute.user.object.class.required"] == "cn"
    ad = MICROSOFT_AD.seeded_properties(Role.SOURCE)
    assert ad["ldap.attribute.user.id"] == "cn" and ad["ldap.member.uniquename.attribute"] == "cn"
    assert ad["ldap.user.object.class"] == "user" and ad["ldap.group.object.class"] == "group"
    assert seeded["ldap.user.object.class"] == "inetOrgPerson"
    assert MICROSOFT_AD.spec("ad.group.flatten") is not None
    problems = LDAP.problems(Role.SOURCE, {"ldap.url": "ldap://x", "ldap.page.size": "0"})
    assert "ldap.page.size: at least 1, not '0'" in problems
    assert "ldap.user.path: required for a source LDAP Server system" in problems
    assert MICROSOFT_AD.problems(Role.SOURCE, {"ad.nonsense": "1"}, complete=False) == [
        "ad.nonsense: unknown property of Microsoft Active Directory"
    ]


# -- transformations end to end -------------------------------------------------------------------


@pytest.mark.anyio
async def test_default_transformations_copy_an_entry_to_another_ou(tree: Tree) -> None:
    dn, attrs = tree.user(
        "bjensen",
        givenName=["Barbara"],
        sn=["Jensen"],
        mobile=["+1 555 0100"],
        telephoneNumber=["+1 555 0101"],
    )
    copies = f"ou=copies,{tree.base}"
    tree.server.add([(dn, attrs), ou(copies), tree.group("Sales", [dn])])
    source = tree.connector(Role.SOURCE)
    target = tree.connector(Role.TARGET, **{"ldap.user.path": copies})
    async with source, target:
        (page,) = await read_all(source, "user")
        read = Transformation(
            default_transformation("ldap", "read"), LDAP.effective(source.config.properties)
        ).apply("user", page.entities[0], operation="read")
        assert isinstance(read, Transformed)
        assert read.variables["entityIdSourceSystem"] == "bjensen"
        assert read.document["groups"] == [{"value": "Sales"}]
        write = Transformation(
            default_transformation("ldap", "write"), LDAP.effective(target.config.properties)
        ).apply("user", read.document, operation="create")
        assert isinstance(write, Transformed)
        written = await target.create(
            "user", write.document, entity_id=write.variables["entityIdTargetSystem"]
        )
    assert written.id == "bjensen"
    entry = tree.server.entry(f"uid=bjensen,{copies}")
    assert entry is not None
    assert entry["cn"] == ["bjensen"] and entry["sn"] == ["Jensen"]
    assert entry["givenName"] == ["Barbara"] and entry["mail"] == ["bjensen@example.org"]
    assert sorted(entry["mobile"]) == ["+1 555 0100", "+1 555 0101"]
    assert entry["objectClass"] == ["inetOrgPerson"]


# -- Active Directory -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_active_directory_flattens_nested_groups(tree: Tree) -> None:
    people = {name: f"cn={name},{tree.people}" for name in ("ann", "ben", "cid", "dot")}
    tree.server.add(
        [
            *((dn, {**tree.user(name)[1], "cn": [name]}) for name, dn in people.items()),
            tree.group("Parent", [people["ann"], f"cn=Child,{tree.groups}"]),
            tree.group("Child", [people["ben"], people["cid"], f"cn=Grandchild,{tree.groups}"]),
            tree.group("Grandchild", [people["dot"], f"cn=Parent,{tree.groups}"]),  # a cycle
        ]
    )
    flat = tree.ad_connector(Role.SOURCE, **{"ad.group.flatten": "true"})
    async with flat as source:
        groups = by_id(await read_all(source, "group"), "cn")
        users = by_id(await read_all(source, "user"), "cn")
        single = await source.get("group", "Child")
        dot = await source.get("user", "dot")
    assert sorted(groups["Parent"]["member"]) == ["ann", "ben", "cid", "dot"]
    assert sorted(groups["Child"]["member"]) == ["ann", "ben", "cid", "dot"]
    assert single is not None and sorted(single["member"]) == ["ann", "ben", "cid", "dot"]
    assert sorted(users["dot"]["memberOf"]) == ["Child", "Grandchild", "Parent"]
    assert dot is not None and sorted(dot["memberOf"]) == ["Child", "Grandchild", "Parent"]
    async with tree.ad_connector(Role.SOURCE) as source:
        groups = by_id(await read_all(source, "group"), "cn")
        users = by_id(await read_all(source, "user"), "cn")
    assert sorted(groups["Parent"]["member"]) == ["Child", "ann"]
    assert users["dot"]["memberOf"] == ["Grandchild"]


def test_active_directory_delta_by_usn() -> None:
    dialect = ActiveDirectory()
    assert dialect.delta_filter("12345") == "(uSNChanged>=12346)"
    with pytest.raises(InvalidDeltaToken):
        dialect.delta_filter("20260101000000Z")
    tracker = dialect.tracker("100", lambda attrs: {"highestCommittedUSN": [b"5000"]})
    tracker.see({"uSNChanged": [b"4999"]})
    assert tracker.token() == "5000"  # where the read started: changes during it come again
    tracker = dialect.tracker("100", lambda attrs: {})  # no root DSE value: the highest seen
    assert tracker.token() == "100"
    tracker.see({"usnchanged": [b"150"]})
    tracker.see({"uSNChanged": [b"120"]})
    assert tracker.token() == "150"


def test_ldap_delta_by_modify_timestamp() -> None:
    dialect = Dialect()
    assert dialect.delta_filter("20260101120000Z") == "(modifyTimestamp>=20260101120000Z)"
    tracker = dialect.tracker(None, lambda attrs: {})
    assert tracker.token() is None
    for stamp in (b"20260101120000Z", b"20260101120000.5Z", b"20251231235959Z"):
        tracker.see({"modifyTimestamp": [stamp]})
    assert tracker.token() == "20260101120000.5Z"


def test_delta_tokens_keep_a_membership_snapshot_without_names() -> None:
    snapshot = {member_key("uid=ann,ou=p"): fingerprint(["Sales", "Ops"])}
    text = DeltaToken("20260101120000Z", snapshot).text()
    assert "ann" not in text and "Sales" not in text
    assert DeltaToken.parse(text) == DeltaToken("20260101120000Z", snapshot)
    assert DeltaToken.parse("12345") == DeltaToken("12345")  # no snapshot: unknown
    assert DeltaToken.parse("12345|").memberships == {}  # a snapshot: nobody in a group
    assert fingerprint(["Ops", "Sales", "Ops"]) == fingerprint(["Sales", "Ops"])
    for damaged in ("12345|abc", "12345|" + "*" * 22):
        with pytest.raises(InvalidDeltaToken):
            DeltaToken.parse(damaged)
    previous = {b"a" * 8: b"1" * 8, b"b" * 8: b"1" * 8, b"c" * 8: b"1" * 8}
    current = {b"a" * 8: b"1" * 8, b"b" * 8: b"2" * 8, b"d" * 8: b"1" * 8}
    assert changed_members(previous, current) == {b"b" * 8, b"c" * 8, b"d" * 8}


def test_active_directory_reads_sam_account_name_and_usn(tree: Tree) -> None:
    properties = {"ldap.api.version": "2", "ldap.user.attributes": "mail"}
    connector = tree.ad_connector(Role.SOURCE, **properties)
    attributes = connector._directory.read_attributes(connector.options.user)
    assert attributes == ["mail", "objectClass", "uSNChanged", "cn", "sAMAccountName"]


def test_ranged_retrieval_keys() -> None:
    assert split_range("member;range=0-1499") == ("member", 0, 1499)
    assert split_range("member;range=1500-*") == ("member", 1500, None)
    assert split_range("member") is None


def test_flattening_survives_cycles() -> None:
    index = GroupIndex.of(
        [
            Group("cn=a,ou=g", "a", ("uid=1,ou=p", "cn=b,ou=g")),
            Group("cn=b,ou=g", "b", ("CN=A,OU=G", "uid=2,ou=p", "uid=1,ou=p")),
        ]
    )
    group = index.group("cn=a,ou=g")
    assert group is not None
    assert flattened_members(index, group) == ["uid=1,ou=p", "uid=2,ou=p"]


# -- the pool -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_calls_share_a_few_connections(tree: Tree) -> None:
    tree.server.add([tree.user(f"c{i}") for i in range(20)])
    threads: set[int] = set()
    original = Session.search

    def spy(self: Session, *args: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Session, "search", spy)
        target = tree.connector()
        async with target:
            found = await asyncio.gather(*(target.get("user", f"c{i}") for i in range(20)))
            assert len(target._idle) <= 4
    assert all(e is not None for e in found)
    assert json.dumps(found)  # plain JSON
    assert len(threads) >= 1


@pytest.mark.anyio
async def test_a_cancelled_call_does_not_lend_its_connection_again(tree: Tree) -> None:
    tree.server.add([tree.user("calm")])
    target = tree.connector()
    async with target:
        assert await target.get("user", "calm") is not None
        (used,) = target._idle
        task = asyncio.create_task(target.get("user", "calm"))
        await asyncio.sleep(0)  # the call now runs in its thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert used not in target._idle
        assert await target.get("user", "calm") is not None  # on a new connection


@pytest.mark.anyio
async def test_a_read_left_early_gives_its_connection_back(tree: Tree) -> None:
    tree.server.add([tree.user(f"e{i}") for i in range(5)])
    target = tree.connector(Role.SOURCE, **{"ldap.page.size": "2"})
    async with target:
        pages = target.read("user")
        async for _ in pages:
            break
        await pages.aclose()  # type: ignore[attr-defined]
        assert len(target._idle) == 1
        assert len(by_id(await read_all(target, "user"))) == 5
