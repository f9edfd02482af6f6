"""Systems: model, properties and credentials, transformations and history, export/import.

On the real database (SQLite and PostgreSQL), through the service the API and CLI use.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import insert, select

from provisor.connectors.base import Role
from provisor.context import ANY_TENANT, Context
from provisor.errors import (
    ConfigError,
    ConflictError,
    InputError,
    InvalidTransformationError,
    NotFoundError,
    PreconditionFailedError,
)
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.storage import tables as t
from provisor.systems.exchange import export_system, identity_management_csv, import_system
from provisor.systems.model import Link, NewSystem, SystemChanges
from provisor.systems.secrets import MASK
from provisor.transform.defaults import default_transformation

AUTHOR = "tester"


def scim_target(name: str = "SCIM target", **extra: Any) -> NewSystem:
    data: dict[str, Any] = {
        "name": name,
        "type": "SCIM System",
        "role": "target",
        "properties": {
            "URL": "https://scim.example.org/v2",
            "Authentication": "BasicAuthentication",
            "User": "sync",
            "Password": "s3cret-Pa55",
        },
    }
    data.update(extra)
    return NewSystem.model_validate(data)


def test_create_seeds_default_properties_and_transformations(services: Services) -> None:
    source = services.systems.create(
        Context.administrator(AUTHOR),
        NewSystem(name="Directory", type="local-identity-directory", role=Role.SOURCE),
    )
    assert source.type.id == "local-identity-directory"
    assert source.enabled and source.transformations == {"read": 1}
    assert source.properties["ips.date.variable.format"] == "yyyy-MM-dd HH:mm:ss.SSS"
    read = services.systems.transformation(Context.system("test"), source.id, "read")
    assert read.text == default_transformation("local-identity-directory", "read")
    assert read.author == AUTHOR and read.version == 1

    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(),
    )
    assert target.transformations == {"write": 1}
    assert target.properties["Password"] == MASK
    assert target.credential_keys == ("Password",)
    assert target.problems == ()

    proxy = services.systems.create(
        Context.administrator(AUTHOR),
        NewSystem.model_validate({"name": "Proxy", "type": "scim", "role": "proxy"}),
    )
    assert proxy.transformations == {"read": 1, "write": 1}
    assert services.systems.transformation(
        Context.system("test"), proxy.id, "read"
    ).text == default_transformation("scim", "proxy-read")
    assert "URL is required" in proxy.problems


@pytest.mark.parametrize("name", ["", " ", "a/b", "x" * 101, "naïve", "semi;colon"])
def test_names_follow_sap_rules(name: str) -> None:
    with pytest.raises(ValidationError, match="system name"):
        NewSystem.model_validate({"name": name, "type": "scim", "role": "target"})


def test_names_are_unique_whatever_the_case(services: Services) -> None:
    services.systems.create(
        Context.administrator(AUTHOR),
        scim_target("HR Feed"),
    )
    with pytest.raises(ConflictError, match="already exists"):
        services.systems.create(
            Context.administrator(AUTHOR),
            scim_target("hr feed"),
        )
    assert services.systems.get(Context.system("test"), "HR FEED").name == "HR Feed"


def test_a_type_has_its_roles(services: Services) -> None:
    with pytest.raises(InputError, match="CSV File"):
        services.systems.create(
            Context.administrator(AUTHOR),
            NewSystem.model_validate({"name": "c", "type": "csv", "role": "proxy"}),
        )
    with pytest.raises(InputError, match="unknown connector type"):
        services.systems.create(
            Context.administrator(AUTHOR),
            NewSystem.model_validate({"name": "c", "type": "fax", "role": "target"}),
        )


def test_credentials_are_encrypted_at_rest_and_never_returned(services: Services) -> None:
    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(),
    )
    with services.db.unscoped_read() as conn:
        stored = conn.execute(
            select(t.system_properties.c.value).where(t.system_properties.c.key == "Password")
        ).scalar_one()
    assert "s3cret" not in stored
    assert "s3cret" not in json.dumps(target.to_dict())
    assert "s3cret" not in json.dumps(
        export_system(Context.system("test"), services.systems, target.id)
    )
    assert (
        services.systems.effective_properties(Context.system("test"), target.id)["Password"]
        == "s3cret-Pa55"
    )
    # The mask sent back keeps the stored value; a new value replaces it.
    kept = services.systems.update(
        Context.administrator(AUTHOR),
        target.id,
        SystemChanges(properties={"Password": MASK, "User": "sync2"}),
    )
    assert kept.properties["User"] == "sync2"
    assert (
        services.systems.effective_properties(Context.system("test"), target.id)["Password"]
        == "s3cret-Pa55"
    )
    services.systems.update(
        Context.administrator(AUTHOR),
        target.id,
        SystemChanges(properties={"Password": "n3w"}),
    )
    assert (
        services.systems.effective_properties(Context.system("test"), target.id)["Password"]
        == "n3w"
    )


def test_custom_credentials_and_parameters(services: Services) -> None:
    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(
            properties={"URL": "https://x.example/scim", "api.token": "t0k3n", "tenant": "acme"},
            credentialKeys=["api.token"],
        ),
    )
    assert target.properties["api.token"] == MASK and target.properties["tenant"] == "acme"
    with pytest.raises(InputError, match="mask stands for a credential"):
        services.systems.update(
            Context.administrator(AUTHOR),
            target.id,
            SystemChanges(properties={"tenant": MASK}),
        )


@pytest.mark.parametrize(
    "properties, message",
    [
        ({"scim.support.patch.operation": "maybe"}, "scim.support.patch.operation: expected"),
        ({"scim.bulk.operations.max.count": "500"}, "scim.bulk.operations.max.count: at most"),
        ({"scim.colour": "blue"}, "scim.colour: unknown property"),
        ({"ips.delete.threshold.users": "ten"}, "ips.delete.threshold.users: expected a whole"),
        ({"Authentication": "Kerberos"}, "Authentication: one of"),
        ({"URL": "ftp://x"}, "URL: a URL"),
        ({"ips.delta.read": "enabled"}, "ips.delta.read: applies to source"),
    ],
)
def test_invalid_properties_are_named(
    services: Services, properties: dict[str, str], message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        services.systems.create(
            Context.administrator(AUTHOR),
            scim_target(properties=properties),
        )


def test_changing_the_url_requires_the_credentials_again(services: Services) -> None:
    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(),
    )
    moved = {"URL": "https://elsewhere.example.org/scim"}
    with pytest.raises(InputError, match="credentials again: Password"):
        services.systems.update(
            Context.administrator(AUTHOR),
            target.id,
            SystemChanges(properties=moved),
        )
    with pytest.raises(InputError, match="credentials again"):
        services.systems.update(
            Context.administrator(AUTHOR),
            target.id,
            SystemChanges(properties={**moved, "Password": MASK}),
        )
    updated = services.systems.update(
        Context.administrator(AUTHOR),
        target.id,
        SystemChanges(properties={**moved, "Password": "fresh"}),
    )
    assert updated.properties["URL"] == moved["URL"]


def test_limits_per_role(settings: Settings) -> None:
    limited = Services.open(settings.model_copy(update={"max_source_systems": 2}))
    try:
        migrate.upgrade(limited.db)
        for i in range(2):
            limited.systems.create(
                Context.administrator(AUTHOR),
                NewSystem.model_validate({"name": f"s{i}", "type": "scim", "role": "source"}),
            )
        with pytest.raises(ConflictError, match="2 source systems"):
            limited.systems.create(
                Context.administrator(AUTHOR),
                NewSystem.model_validate({"name": "s2", "type": "scim", "role": "source"}),
            )
        limited.systems.create(
            Context.administrator(AUTHOR),
            scim_target(),
        )  # other roles count apart
    finally:
        limited.close()


def test_transformation_history(services: Services) -> None:
    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(),
    )
    with pytest.raises(InvalidTransformationError) as info:
        services.systems.save_transformation(
            Context.administrator(AUTHOR),
            target.id,
            "write",
            {"user": {"mappings": [{"sourcePath": "$.a[", "targetPath": "$.b"}, {"constant": 1}]}},
            description="broken",
        )
    assert len(info.value.problems) == 2
    assert services.systems.history(Context.system("test"), target.id, "write")[1] == 1, (
        "nothing saved"
    )
    mine = '{"user": {"mappings": [ /* all */ {"sourcePath": "$", "targetPath": "$"}]}}'
    saved = services.systems.save_transformation(
        Context.administrator("alice"),
        target.id,
        "write",
        mine,
        description="Copy everything",
    )
    assert saved.version == 2 and saved.text == mine, "stored as written, comments included"
    applied = services.systems.apply_version(
        Context.administrator("bob"),
        target.id,
        "write",
        1,
    )
    assert applied.version == 3 and applied.description == "Applied version 1"
    assert applied.text == default_transformation("scim", "write")
    reset = services.systems.reset_transformation(
        Context.administrator("c"),
        target.id,
        "write",
        to="initial",
    )
    assert reset.version == 4
    versions, total = services.systems.history(Context.system("test"), target.id, "write")
    assert total == 4 and [v.version for v in versions] == [4, 3, 2, 1]
    assert [v.author for v in versions] == ["c", "bob", "alice", AUTHOR]
    assert services.systems.get(Context.system("test"), target.id).transformations == {"write": 4}
    with pytest.raises(NotFoundError, match="write transformation, not a read"):
        services.systems.transformation(Context.system("test"), target.id, "read")
    with pytest.raises(NotFoundError):
        services.systems.transformation(Context.system("test"), target.id, "write", 99)
    with pytest.raises(InputError, match="description"):
        services.systems.save_transformation(
            Context.administrator(AUTHOR),
            target.id,
            "write",
            mine,
            description=" ",
        )


def test_sources_of_targets(services: Services) -> None:
    source = services.systems.create(
        Context.administrator(AUTHOR),
        NewSystem.model_validate({"name": "HR", "type": "scim", "role": "source"}),
    )
    other = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target("Other"),
    )
    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(sourceSystemIds=[source.id]),
    )
    assert target.source_system_ids == (source.id,)
    assert target.source_systems == (Link(id=source.id, name="HR"),)
    linked = services.systems.show(Context.administrator(AUTHOR), "HR")
    assert linked.target_systems == (Link(id=target.id, name=target.name),)
    assert linked.to_dict()["targetSystems"] == [{"id": target.id, "name": target.name}]
    assert target.to_dict()["sourceSystems"] == [{"id": source.id, "name": "HR"}]
    with pytest.raises(InputError, match="not a source"):
        services.systems.update(
            Context.administrator(AUTHOR),
            target.id,
            SystemChanges(source_system_ids=[other.id]),
        )
    with pytest.raises(InputError, match="no system"):
        services.systems.update(
            Context.administrator(AUTHOR),
            target.id,
            SystemChanges(source_system_ids=["nope"]),
        )
    services.systems.delete(Context.system("test"), source.id)
    assert services.systems.get(Context.system("test"), target.id).source_system_ids == ()


def test_optimistic_concurrency(services: Services) -> None:
    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(),
    )
    changed = services.systems.update(
        Context.administrator(AUTHOR),
        target.id,
        SystemChanges(description="v2"),
        if_match=target.version,
    )
    assert changed.version == target.version + 1
    with pytest.raises(PreconditionFailedError):
        services.systems.update(
            Context.administrator(AUTHOR),
            target.id,
            SystemChanges(description="v3"),
            if_match=target.version,
        )
    with pytest.raises(PreconditionFailedError):
        services.systems.delete(Context.system("test"), target.id, if_match=target.version)


def test_list_filters_and_pages(services: Services) -> None:
    for i in range(5):
        services.systems.create(
            Context.administrator(AUTHOR),
            scim_target(f"t{i}", enabled=i % 2 == 0),
        )
    services.systems.create(
        Context.administrator(AUTHOR),
        NewSystem.model_validate({"name": "src", "type": "csv", "role": "source"}),
    )
    found, total = services.systems.all(Context.system("test"), role=Role.TARGET, offset=1, limit=2)
    assert total == 5 and [s.name for s in found] == ["t2", "t4"]  # enabled first, by name
    disabled, _ = services.systems.all(Context.system("test"), enabled=False)
    assert [s.name for s in disabled] == ["t1", "t3"]
    csv, _ = services.systems.all(Context.system("test"), type="CSV File")
    assert [s.name for s in csv] == ["src"]


def test_export_and_import(services: Services) -> None:
    source = services.systems.create(
        Context.administrator(AUTHOR),
        NewSystem.model_validate({"name": "HR", "type": "scim", "role": "source"}),
    )
    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(sourceSystemIds=[source.id]),
    )
    exported = export_system(Context.system("test"), services.systems, target.id)
    assert exported["role"] == "target" and exported["credentialKeys"] == ["Password"]
    assert "Password" not in exported["properties"]
    assert exported["sourceSystems"] == [{"id": source.id, "name": "HR"}]
    assert exported["transformations"]["write"] == json.loads(
        default_transformation("scim", "write")
    )
    with pytest.raises(ConflictError, match="choose another name"):
        import_system(
            Context.administrator(AUTHOR),
            services.systems,
            exported,
        )
    with pytest.raises(InputError, match="target export cannot be imported as a source"):
        import_system(
            Context.administrator(AUTHOR),
            services.systems,
            exported,
            name="Copy",
            role="source",  # type: ignore[arg-type]
        )
    imported = import_system(Context.administrator(AUTHOR), services.systems, exported, name="Copy")
    copy = imported.system
    assert copy.id != target.id and copy.role == target.role
    assert copy.properties["URL"] == target.properties["URL"]
    assert "Password" not in copy.properties
    assert copy.source_system_ids == (source.id,)
    assert imported.warnings == ["Enter the credentials again: Password."]
    with_secret = {**exported, "properties": {**exported["properties"], "Password": "leak"}}
    again = import_system(
        Context.administrator(AUTHOR), services.systems, with_secret, name="Copy 2"
    ).system
    assert "Password" not in again.properties, "credentials never come from a file"


def test_credentials_need_the_master_key_they_were_saved_with(
    services: Services, settings: Settings
) -> None:
    target = services.systems.create(
        Context.administrator(AUTHOR),
        scim_target(),
    )
    other = Services.open(settings.model_copy(update={"secret_key": SecretStr("another key " * 4)}))
    try:
        with pytest.raises(ConfigError, match="master key"):
            other.systems.effective_properties(Context.system("test"), target.id)
    finally:
        other.close()


def test_proxies_export_as_identity_management_csv(services: Services) -> None:
    proxy = services.systems.create(
        Context.administrator(AUTHOR),
        NewSystem.model_validate({"name": "IdM proxy", "type": "scim", "role": "proxy"}),
    )
    text = identity_management_csv(proxy, "https://ips.example.org:8443/")
    header, values, end = text.split("\n")
    assert end == "" and header.startswith("Name,Description,Type,Disabled,TypeQN,AUTH_PASSWORD")
    row = dict(zip(header.split(","), json.loads("[" + values + "]"), strict=True))
    assert row["SCIM_HOST"] == "ips.example.org" and row["SCIM_PORT"] == "8443"
    assert row["SCIM_PATH"] == f"/ipsproxy/service/api/v1/scim/{proxy.id}"
    assert row["SCIM_PROTOCOL"] == "https" and row["SCIM_ASSIGNMENT_METHOD"] == "PATCH"
    assert row["SYSTEM_PRIVILEGE"] == "PRIV:SYSTEM:IdM proxy" and row["AUTH_PASSWORD"] == ""
    assert row["TypeQN"] == "com.sap.idm.connector.scim:reptype.SCIM" and row["Disabled"] == "0"
    with pytest.raises(InputError, match="Only proxy systems"):
        identity_management_csv(
            services.systems.create(
                Context.administrator(AUTHOR),
                scim_target(),
            ),
            "http://x",
        )


# -- context: permissions and audit ---------------------------------------------------------------


def test_admin_operations_need_admin_and_are_audited_without_secrets(services: Services) -> None:
    from provisor.context import Actor, ActorKind, Permission
    from provisor.errors import PermissionDeniedError

    client = Context(Actor(ActorKind.CLIENT, "feeder", frozenset({Permission.MANAGE_USERS})))
    with pytest.raises(PermissionDeniedError, match="admin"):
        services.systems.create(client, scim_target())
    admin = Context.administrator(AUTHOR)
    target = services.systems.create(admin, scim_target())
    assert services.systems.get(client, target.id).id == target.id  # internal: no check
    with pytest.raises(PermissionDeniedError):
        services.systems.show(client, target.id)
    services.systems.update(
        admin, target.id, SystemChanges(description="HR"), credentials={"Token": "t0k3n-XYZ"}
    )
    services.systems.set_enabled(admin, target.id, False)
    services.systems.save_transformation(
        admin,
        target.id,
        "write",
        services.systems.transformation(admin, target.id, "write").text,
        description="same",
        if_match=3,
    )
    with pytest.raises(PreconditionFailedError):
        services.systems.delete(admin, target.id, if_match=1)
    services.systems.delete(admin, target.id, if_match=4)
    with services.db.read(admin) as tx:
        rows = tx.execute(select(t.audit_log).order_by(t.audit_log.c.id)).all()
    entries = [(r.action, r.target, r.actor, json.loads(r.detail)) for r in rows]
    assert [e[0] for e in entries] == [
        "system.create",
        "system.update",
        "system.disable",
        "transformation.update",
        "system.delete",
    ]
    assert {e[1] for e in entries} == {target.id} and {e[2] for e in entries} == {AUTHOR}
    assert entries[0][3]["credentials"] == ["Password"]
    assert entries[1][3]["credentials"] == ["Token"]
    assert entries[1][3]["description"] == "HR"
    text = json.dumps([e[3] for e in entries])
    assert "s3cret" not in text and "t0k3n" not in text


def test_a_password_set_later_is_a_credential(services: Services) -> None:
    """Password is a credential of every system, also when a change sets it on a system that
    had no credential yet (neither PATCH nor a replacement of the properties stores it plain)."""
    admin = Context.administrator(AUTHOR)
    target = services.systems.create(
        admin,
        NewSystem(
            name="No secret yet",
            type="scim",
            role="target",
            properties={"URL": "https://scim.example.org/v2"},
        ),
    )
    changed = services.systems.update(
        admin, target.id, SystemChanges(properties={"Password": "s3cret-later"})
    )
    assert changed.credential_keys == ("Password",)
    assert changed.properties["Password"] == MASK
    services.systems.update(admin, target.id, SystemChanges(properties={"Password": None}))
    replaced = services.systems.replace_properties(
        admin, target.id, {"URL": "https://scim.example.org/v2", "Password": "s3cret-again"}, None
    )
    assert replaced.properties["Password"] == MASK
    assert services.systems.effective_properties(admin, target.id)["Password"] == "s3cret-again"


def test_a_password_stored_plain_before_the_fix_is_encrypted_at_start(services: Services) -> None:
    """Credentials an earlier version stored as plain text are encrypted by the start-up
    upkeep, in every tenant; other plain properties stay as they are."""
    admin = Context.administrator(AUTHOR)
    target = services.systems.create(
        admin,
        NewSystem(
            name="Stored plain",
            type="scim",
            role="target",
            properties={"URL": "https://scim.example.org/v2"},
        ),
    )
    sp = t.system_properties
    with services.db.unscoped_write() as conn:  # what the bug left behind
        conn.execute(
            insert(sp).values(
                tenant="default",
                system_id=target.id,
                key="Password",
                value="plain-s3cret",
                credential=0,
            )
        )
    upkeep = Context.system("maintenance", tenant=ANY_TENANT)
    assert services.systems.seal_plain_credentials(upkeep) == 1
    assert services.systems.seal_plain_credentials(upkeep) == 0
    with services.db.unscoped_read() as conn:
        stored = conn.execute(
            select(sp.c.value, sp.c.credential).where(
                sp.c.system_id == target.id, sp.c.key == "Password"
            )
        ).one()
    assert stored.credential == 1 and "plain-s3cret" not in stored.value
    assert services.systems.show(admin, target.id).properties["Password"] == MASK
    assert services.systems.effective_properties(admin, target.id)["Password"] == "plain-s3cret"
    assert services.systems.show(admin, target.id).properties["URL"].startswith("https://")
