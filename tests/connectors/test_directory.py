"""The Local Identity Directory connector, on the real directory (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from provisor.connectors.base import (
    ConnectorConfig,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    Role,
)
from provisor.connectors.directory import DirectoryConnector, patch_operations, scim_filter_path
from provisor.runtime import Services
from tests.helpers import group_body, user_body

pytestmark = pytest.mark.anyio


def connector(services: Services, **properties: str) -> DirectoryConnector:
    config = ConnectorConfig(
        system_id="s1",
        system_name="LID",
        role=Role.TARGET,
        properties=properties,
        services={"directory": services.directory},
    )
    return DirectoryConnector(config)


async def read_all(lid: DirectoryConnector, entity_type: str, **kw: Any) -> tuple[list[Any], Any]:
    entities, token = [], None
    async for page in lid.read(entity_type, **kw):
        entities.extend(page.entities)
        token = page.delta_token or token
    return entities, token


async def test_full_and_delta_reads_page_through_the_directory(services: Services) -> None:
    lid = connector(services, **{"idds.page.size": "100"})
    for i in range(250):
        await lid.create("user", user_body(f"reader-{i:03d}"))
    users, token = await read_all(lid, "user")
    assert sorted(u["userName"] for u in users) == [f"reader-{i:03d}" for i in range(250)]
    assert token == max(u["meta"]["lastModified"] for u in users)
    changed = users[7]
    await lid.update("user", changed["id"], {**user_body(changed["userName"]), "title": "Boss"})
    delta, newer = await read_all(lid, "user", delta=token)
    assert [u["userName"] for u in delta] == [changed["userName"]]
    assert newer is not None and newer > token
    assert (await read_all(lid, "user", delta=newer))[0] == []


async def test_filters_of_the_system_apply_to_reads(services: Services) -> None:
    lid = connector(services, **{"idds.user.filter": 'userName sw "keep"'})
    await lid.create("user", user_body("keep-1"))
    await lid.create("user", user_body("drop-1"))
    users, _ = await read_all(lid, "user")
    assert [u["userName"] for u in users] == ["keep-1"]


async def test_writes_get_find_and_delete(services: Services) -> None:
    lid = connector(services)
    written = await lid.create("user", user_body("jdoe", title="Engineer"))
    assert written.entity is not None and written.entity["userName"] == "jdoe"
    assert (await lid.get("user", written.id))["title"] == "Engineer"  # type: ignore[index]
    found = await lid.find("user", "emails[0].value", "jdoe@example.com")
    assert [u["id"] for u in found] == [written.id]
    assert await lid.find("user", "userName", 'no "such" user') == []
    with pytest.raises(EntityConflict):
        await lid.create("user", user_body("jdoe"))
    with pytest.raises(InvalidEntity):
        await lid.create("user", {"schemas": user_body()["schemas"]})
    replaced = await lid.update("user", written.id, user_body("jdoe"))
    assert replaced.entity is not None and "title" not in replaced.entity
    await lid.delete("user", written.id)
    assert await lid.get("user", written.id) is None
    with pytest.raises(EntityNotFound):
        await lid.delete("user", written.id)
    with pytest.raises(EntityNotFound):
        await lid.update("user", written.id, user_body("jdoe"))


async def test_patch_mode_sends_only_what_changed(services: Services) -> None:
    lid = connector(services, **{"idds.support.patch.operation": "true"})
    previous = user_body("patchy", title="Engineer", nickName="P")
    written = await lid.create("user", previous)
    wanted = {**previous, "title": "Manager"}
    del wanted["nickName"]
    updated = await lid.update("user", written.id, wanted, previous=previous)
    assert updated.entity is not None
    assert updated.entity["title"] == "Manager" and "nickName" not in updated.entity
    assert patch_operations(wanted, previous) == [
        {"op": "replace", "path": "title", "value": "Manager"},
        {"op": "remove", "path": "nickName"},
    ]


async def test_group_members(services: Services) -> None:
    lid = connector(services)
    users = [(await lid.create("user", user_body())).id for _ in range(3)]
    group = await lid.create("group", group_body("Sales", members=users[:1]))
    await lid.change_members(group.id, add=users[1:], remove=users[:1])
    stored = await lid.get("group", group.id)
    assert stored is not None
    assert sorted(m["value"] for m in stored["members"]) == sorted(users[1:])
    groups, _ = await read_all(lid, "group")
    assert [g["displayName"] for g in groups] == ["Sales"]


async def test_a_job_writing_members_changes_the_users_for_delta_reads(
    services: Services,
) -> None:
    """A job writing a group's members into the LID changes the users that joined or
    left it: a delta read of the LID (as a source of another job) returns exactly them."""
    lid = connector(services)
    users = [(await lid.create("user", user_body())).id for _ in range(3)]
    group = await lid.create("group", group_body("Sales", members=users[:2]))
    _, token = await read_all(lid, "user")
    await lid.change_members(group.id, add=users[2:], remove=users[:1])
    delta, _ = await read_all(lid, "user", delta=token)
    assert sorted(u["id"] for u in delta) == sorted([users[0], users[2]])
    versions = {u["id"]: u["meta"]["version"] for u in delta}
    assert versions == {users[0]: 'W/"3"', users[2]: 'W/"2"'}, "joined, then left: 2 changes"


async def test_a_missing_member_makes_the_group_invalid_not_gone(services: Services) -> None:
    """The job engine recreates a target entity on EntityNotFound: a group that names a member
    the directory does not have is an invalid entity, and the group stays as it was."""
    lid = connector(services)
    user = (await lid.create("user", user_body())).id
    with pytest.raises(InvalidEntity, match="not a user or group"):
        await lid.create("group", group_body("Ghosts", members=[user, "no-such-user"]))
    group = await lid.create("group", group_body("Sales", members=[user]))
    with pytest.raises(InvalidEntity, match="no-such-user"):
        await lid.update("group", group.id, group_body("Sales", members=["no-such-user"]))
    with pytest.raises(InvalidEntity):
        await lid.change_members(group.id, add=["no-such-user"])
    with pytest.raises(EntityNotFound):
        await lid.change_members("no-such-group", add=[user])
    stored = await lid.get("group", group.id)
    assert stored is not None and [m["value"] for m in stored["members"]] == [user]


async def test_test_connection_counts(services: Services) -> None:
    lid = connector(services)
    await lid.create("user", user_body())
    assert "1 users, 0 groups" in await lid.test_connection()


def test_unique_attribute_paths_become_filter_paths() -> None:
    assert scim_filter_path("emails[0].value") == "emails.value"
    assert scim_filter_path("$.userName") == "userName"
    assert (
        scim_filter_path("['urn:sap:cloud:scim:schemas:extension:custom:2.0:Group']['name']")
        == "urn:sap:cloud:scim:schemas:extension:custom:2.0:Group:name"
    )
