"""The CSV File connector on real files: columns, streaming reads, buffered atomic writes."""

from __future__ import annotations

import asyncio
import codecs
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from provisor.connectors.base import (
    BackendError,
    ConnectionFailed,
    ConnectorConfig,
    ConnectorError,
    Entity,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    Role,
)
from provisor.connectors.csv.columns import Steps, column_name, parse_column
from provisor.connectors.csv.connector import CSVConnector
from provisor.connectors.types import connector_type
from provisor.errors import ConfigError
from provisor.transform import Transformation, Transformed
from provisor.transform.defaults import default_transformation

pytestmark = pytest.mark.anyio

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
HEADER = (
    "id,userName,name.givenName,name.familyName,emails[0].value,emails[0].type,"
    f"emails[1].value,{ENTERPRISE}:department,{ENTERPRISE}:manager.value,active"
)
ROWS = (
    "u1,bjensen,Barbara,Jensen,b@example.com,work,babs@example.org,Sales,u2,true",
    "u2,jsmith,John,Smith,j@example.com,work,,Board,,false",
)
BJENSEN: Entity = {
    "id": "u1",
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [{"value": "b@example.com", "type": "work"}, {"value": "babs@example.org"}],
    ENTERPRISE: {"department": "Sales", "manager": {"value": "u2"}},
    "active": "true",
}


def csv_system(
    folder: Path, role: Role = Role.TARGET, groups: bool = True, **properties: str
) -> CSVConnector:
    """A CSV File system on users.csv (and groups.csv) in ``folder``; properties with _ for ."""
    props = {"csv.user.file": "users.csv"}
    if groups:
        props["csv.group.file"] = "groups.csv"
    props.update({k.replace("_", "."): v for k, v in properties.items()})
    return CSVConnector(ConnectorConfig("s1", "CSV", role, props, {"data_dir": folder}))


async def read_all(system: CSVConnector, entity_type: str = "user") -> list[Entity]:
    return [e async for page in system.read(entity_type) for e in page.entities]


def text(path: Path) -> str:
    """A file's text, line ends as they are."""
    return path.read_bytes().decode()


def write(path: Path, *lines: str, encoding: str = "utf-8", end: str = "\n") -> None:
    path.write_bytes((end.join(lines) + end).encode(encoding))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- the type -------------------------------------------------------------------------------------


def test_registered_with_its_properties() -> None:
    csv_type = connector_type("CSV")
    assert csv_type.id == "csv" and csv_type.name == "CSV File"
    assert csv_type.problems(Role.SOURCE, {}) == [
        "csv.user.file: required for a source CSV File system"
    ]
    assert csv_type.problems(Role.TARGET, {"csv.user.file": "u.csv", "csv.delimiter": "\\t"}) == []
    assert csv_type.problems(Role.TARGET, {"csv.user.file": "u.csv", "csv.page.size": "0"})
    assert csv_type.effective({})["csv.id.column"] == "id"


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"csv\.encoding"):
        csv_system(tmp_path, csv_encoding="klingon")
    with pytest.raises(ConfigError, match=r"csv\.encoding"):
        csv_system(tmp_path, csv_encoding="base64")
    with pytest.raises(ConfigError, match=r"csv\.delimiter"):
        csv_system(tmp_path, csv_delimiter="#")
    with pytest.raises(ConfigError, match=r"csv\.user\.file"):
        CSVConnector(ConnectorConfig("s1", "CSV", Role.SOURCE, {}, {}))


def test_column_names() -> None:
    assert parse_column("name.givenName") == ("name", "givenName")
    assert parse_column("emails[1].value") == ("emails", 1, "value")
    assert parse_column(f"{ENTERPRISE}:manager.value") == (ENTERPRISE, "manager", "value")
    assert parse_column("emails[].value") == ("emails", None, "value")
    assert parse_column("members", group=True) == ("members", None, "value")
    assert parse_column("members") == ("members",)
    paths: list[Steps] = [("a", 0, "b"), (ENTERPRISE, "x", 2), ("schemas", None)]
    for steps in paths:
        assert parse_column(column_name(steps)) == steps


# -- reads ----------------------------------------------------------------------------------------


async def test_read_nested_urn_and_array_columns(tmp_path: Path) -> None:
    write(tmp_path / "users.csv", HEADER, *ROWS)
    users = await read_all(csv_system(tmp_path, Role.SOURCE))
    assert users[0] == BJENSEN
    assert users[1] == {
        "id": "u2",
        "userName": "jsmith",
        "name": {"givenName": "John", "familyName": "Smith"},
        "emails": [{"value": "j@example.com", "type": "work"}],
        ENTERPRISE: {"department": "Board"},
        "active": "false",
    }


async def test_multi_valued_columns_and_members(tmp_path: Path) -> None:
    write(tmp_path / "users.csv", "id,emails[].value,emails[1].type", "u1,a@x|b@x|c@x,home", "u2,,")
    write(tmp_path / "groups.csv", "id,displayName,members", "g1,Sales,u1|u2", "g2,Empty,")
    system = csv_system(tmp_path, Role.SOURCE)
    assert await read_all(system) == [
        {
            "id": "u1",
            "emails": [{"value": "a@x"}, {"value": "b@x", "type": "home"}, {"value": "c@x"}],
        },
        {"id": "u2"},
    ]
    assert await read_all(system, "group") == [
        {"id": "g1", "displayName": "Sales", "members": [{"value": "u1"}, {"value": "u2"}]},
        {"id": "g2", "displayName": "Empty"},
    ]


async def test_read_25000_rows_in_pages(tmp_path: Path) -> None:
    lines = ["id,userName,emails[0].value"]
    lines += [f"u{i},user{i},user{i}@example.com" for i in range(25_000)]
    write(tmp_path / "users.csv", *lines)
    system = csv_system(tmp_path, Role.SOURCE)
    sizes, ids = [], []
    async for page in system.read("user"):
        sizes.append(len(page.entities))
        ids += [e["id"] for e in page.entities]
        assert page.delta_token is None
    assert sizes == [1000] * 25
    assert ids == [f"u{i}" for i in range(25_000)]
    sizes = [len(p.entities) async for p in csv_system(tmp_path, csv_page_size="7000").read("user")]
    assert sizes == [7000, 7000, 7000, 4000]


async def test_bom_is_skipped_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"id,userName\r\nu1,bjensen\r\n")
    system = csv_system(tmp_path)
    assert await read_all(system) == [{"id": "u1", "userName": "bjensen"}]
    await system.create("user", {"userName": "jsmith"}, entity_id="u2")
    await system.flush()
    assert path.read_bytes() == codecs.BOM_UTF8 + b"id,userName\r\nu1,bjensen\r\nu2,jsmith\r\n"


@pytest.mark.parametrize(("delimiter", "char"), [(";", ";"), ("\\t", "\t"), ("|", "|")])
async def test_delimiters(tmp_path: Path, delimiter: str, char: str) -> None:
    write(tmp_path / "users.csv", f"id{char}userName{char}title", f"u1{char}Smith, John{char}")
    system = csv_system(tmp_path, csv_delimiter=delimiter)
    assert await read_all(system) == [{"id": "u1", "userName": "Smith, John"}]
    await system.update("user", "u1", {"userName": "x", "title": "Dr"})
    await system.aclose()
    expected = f"id{char}userName{char}title\nu1{char}x{char}Dr\n"
    assert text(tmp_path / "users.csv") == expected


async def test_latin1(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    write(path, "id,name.familyName", "u1,Müller", encoding="latin-1")
    system = csv_system(tmp_path, csv_encoding="latin-1")
    assert await read_all(system) == [{"id": "u1", "name": {"familyName": "Müller"}}]
    await system.create("user", {"name": {"familyName": "Ærø"}}, entity_id="u2")
    with pytest.raises(InvalidEntity, match=r"name\.familyName"):
        await system.create("user", {"name": {"familyName": "Łódź"}}, entity_id="u3")
    await system.aclose()
    assert path.read_bytes() == "id,name.familyName\nu1,Müller\nu2,Ærø\n".encode("latin-1")


async def test_utf16_round_trip(tmp_path: Path) -> None:
    system = csv_system(tmp_path, csv_encoding="utf-16")
    await system.create("user", {"userName": "zoë"}, entity_id="u1")
    await system.aclose()
    assert (tmp_path / "users.csv").read_bytes().startswith(codecs.BOM_UTF16)
    assert await read_all(system) == [{"id": "u1", "userName": "zoë"}]


async def test_malformed_rows_name_their_line(tmp_path: Path) -> None:
    write(tmp_path / "users.csv", "id,title", 'u1,"two\nlines"', "u2,x", "u3,x,extra")
    with pytest.raises(BackendError, match=r"users.csv, line 5: 3 cells, but the header names 2"):
        await read_all(csv_system(tmp_path, Role.SOURCE))
    write(tmp_path / "users.csv", "id,name,name.givenName", "u1,,x")
    with pytest.raises(BackendError, match=r"line 1: columns 'name' and 'name.givenName'"):
        await read_all(csv_system(tmp_path, Role.SOURCE))


async def test_bad_encoding_names_its_line(tmp_path: Path) -> None:
    lines = [b"id,userName"] + [f"u{i},user{i}".encode() for i in range(2000)]
    lines[1500] = b"u1499,caf\xe9"  # latin-1, not utf-8
    (tmp_path / "users.csv").write_bytes(b"\n".join(lines) + b"\n")
    system = csv_system(tmp_path, Role.SOURCE)
    with pytest.raises(BackendError, match=r"users.csv, line 1501: not utf-8 text"):
        await read_all(system)
    with pytest.raises(BackendError, match="line 1501"):
        await system.test_connection()


async def test_missing_file(tmp_path: Path) -> None:
    source = csv_system(tmp_path, Role.SOURCE)
    with pytest.raises(ConnectionFailed, match=r"^users\.csv: cannot open") as caught:
        await read_all(source)
    assert caught.value.retryable
    with pytest.raises(ConnectionFailed, match="no such file"):
        await source.get("user", "u1")
    target = csv_system(tmp_path)
    assert await read_all(target) == []
    assert await target.get("user", "u1") is None
    assert await target.find("user", "userName", "x") == []


async def test_group_file_is_optional(tmp_path: Path) -> None:
    system = csv_system(tmp_path, groups=False)
    assert system.capabilities.entity_types == {"user"}
    assert not system.capabilities.membership and not system.capabilities.delta_read
    with pytest.raises(ConnectorError, match="no groups"):
        await read_all(system, "group")
    with pytest.raises(ConnectorError, match="no groups"):
        await system.change_members("g1", add=["u1"])
    assert csv_system(tmp_path).capabilities.membership


async def test_get_and_find(tmp_path: Path) -> None:
    write(tmp_path / "users.csv", HEADER, *ROWS)
    write(tmp_path / "groups.csv", "id,displayName,members", "g1,A,u1|u2", "g2,B,u2")
    system = csv_system(tmp_path, Role.SOURCE)
    assert await system.get("user", "u1") == BJENSEN
    assert await system.get("user", "nobody") is None
    assert await system.find("user", "userName", "bjensen") == [BJENSEN]
    assert await system.find("user", "name.givenName", "Barbara") == [BJENSEN]
    assert await system.find("user", "emails.value", "babs@example.org") == [BJENSEN]
    assert await system.find("user", "emails[1].value", "babs@example.org") == [BJENSEN]
    assert await system.find("user", f"{ENTERPRISE}:department", "Sales") == [BJENSEN]
    assert await system.find("user", f"$['{ENTERPRISE}']['department']", "Sales") == [BJENSEN]
    assert await system.find("user", "userName", "nobody") == []
    found = await system.find("group", "members", "u2")
    assert [g["id"] for g in found] == ["g1", "g2"]


# -- writes ---------------------------------------------------------------------------------------


async def test_create_update_delete_after_each_flush(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    system = csv_system(tmp_path)
    assert not path.exists()
    written = await system.create(
        "user",
        {"userName": "bjensen", "name": {"givenName": "Barbara"}, "active": True, "schemas": ["s"]},
        entity_id="u1",
    )
    assert written.id == "u1"
    assert not path.exists()  # waiting for the flush
    assert await system.get("user", "u1") == {
        "id": "u1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
        "active": "true",
        "schemas": ["s"],
    }
    await system.flush()
    assert text(path) == (
        "id,userName,name.givenName,active,schemas[0]\r\nu1,bjensen,Barbara,true,s\r\n"
    )
    own = await system.create("user", {"id": "u9", "userName": "own", "emails": [{"value": "e"}]})
    generated = await system.create("user", {"userName": "anon"})
    assert own.id == "u9" and len(generated.id) == 36
    await system.flush()
    assert text(path).splitlines() == [
        "id,userName,name.givenName,active,schemas[0],emails[0].value",
        "u1,bjensen,Barbara,true,s,",
        "u9,own,,,,e",
        f"{generated.id},anon,,,,",
    ]
    await system.update("user", "u9", {"id": "ignored", "userName": "own2", "displayName": "O"})
    await system.delete("user", generated.id)
    await system.flush()
    assert text(path).splitlines() == [
        "id,userName,name.givenName,active,schemas[0],emails[0].value,displayName",
        "u1,bjensen,Barbara,true,s,,",
        "u9,own2,,,,,O",
    ]
    await system.delete("user", "u1")
    await system.aclose()
    assert text(path).splitlines()[1:] == ["u9,own2,,,,,O"]


async def test_conflicts_and_missing_ids(tmp_path: Path) -> None:
    write(tmp_path / "users.csv", "id,userName", "u1,a")
    system = csv_system(tmp_path)
    with pytest.raises(EntityConflict, match="u1"):
        await system.create("user", {"userName": "b"}, entity_id="u1")
    with pytest.raises(EntityConflict):
        await system.create("user", {"id": "u1", "userName": "b"})
    await system.create("user", {"userName": "b"}, entity_id="u2")
    with pytest.raises(EntityConflict):
        await system.create("user", {"userName": "c"}, entity_id="u2")  # waiting, still taken
    for call in (system.update("user", "nope", {"userName": "x"}), system.delete("user", "nope")):
        with pytest.raises(EntityNotFound):
            await call
    await system.delete("user", "u2")
    with pytest.raises(EntityNotFound):
        await system.delete("user", "u2")
    await system.create("user", {"userName": "again"}, entity_id="u2")
    await system.aclose()
    assert text(tmp_path / "users.csv") == "id,userName\nu1,a\nu2,again\n"


async def test_refused_entities(tmp_path: Path) -> None:
    system = csv_system(tmp_path)
    with pytest.raises(InvalidEntity, match="cannot be a column name"):
        await system.create("user", {"e.mail": "x"})
    with pytest.raises(InvalidEntity, match="separator"):
        await system.create("group", {"members": [{"value": "a|b"}]})
    with pytest.raises(InvalidEntity, match="NUL"):
        await system.create("user", {"userName": "a\x00b"})
    await system.create("user", {"name": {"givenName": "x"}}, entity_id="u1")
    with pytest.raises(InvalidEntity, match="do not fit"):
        await system.create("user", {"name": "flat"}, entity_id="u2")
    await system.aclose()
    assert text(tmp_path / "users.csv") == "id,name.givenName\r\nu1,x\r\n"


async def test_groups_and_members(tmp_path: Path) -> None:
    path = tmp_path / "groups.csv"
    system = csv_system(tmp_path)
    members = [{"value": "u1"}, {"value": "u2"}]
    await system.create("group", {"displayName": "Sales", "members": members}, entity_id="g1")
    await system.create("group", {"displayName": "Empty"}, entity_id="g2")
    await system.flush()
    assert text(path) == "id,displayName,members\r\ng1,Sales,u1|u2\r\ng2,Empty,\r\n"
    await system.change_members("g1", add=["u3", "u1"], remove=["u2"])
    await system.change_members("g2", add=["u1"])
    await system.flush()
    assert text(path).splitlines()[1:] == ["g1,Sales,u1|u3", "g2,Empty,u1"]
    await system.change_members("g1", remove=["u1", "u3"])
    await system.aclose()
    assert text(path).splitlines()[1:] == ["g1,Sales,", "g2,Empty,u1"]
    assert await system.get("group", "g1") == {"id": "g1", "displayName": "Sales"}
    with pytest.raises(EntityNotFound):
        await system.change_members("g9", add=["u1"])


async def test_writes_reach_the_disk_a_page_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced: list[str] = []
    real_replace = os.replace

    def counting_replace(src: Any, dst: Any) -> None:
        replaced.append(str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", counting_replace)
    system = csv_system(tmp_path, csv_page_size="1000")
    for i in range(10_000):
        await system.create("user", {"userName": f"user{i}", "active": True}, entity_id=f"u{i}")
    assert len(replaced) == 9  # the 1,001st, 2,001st, ... write flushed the page before it
    assert len(text(tmp_path / "users.csv").splitlines()) == 9001
    await system.aclose()
    assert len(replaced) == 10
    assert len(text(tmp_path / "users.csv").splitlines()) == 10_001
    for i in range(0, 10_000, 2):
        await system.update("user", f"u{i}", {"userName": f"new{i}"})
    await system.aclose()
    assert len(replaced) == 15
    users = await read_all(system)
    assert users[0] == {"id": "u0", "userName": "new0"}
    assert users[1] == {"id": "u1", "userName": "user1", "active": "true"}


# -- durability and locking -----------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["replace", "fsync"])
async def test_a_failed_flush_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "users.csv"
    write(path, "id,userName", "u1,a")
    before = path.read_bytes()
    system = csv_system(tmp_path)
    await system.update("user", "u1", {"userName": "changed"})
    await system.create("user", {"userName": "b"}, entity_id="u2")

    def broken(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, failing, broken)
        with pytest.raises(BackendError, match=r"No space left on device.*unchanged"):
            await system.flush()
    assert path.read_bytes() == before
    assert names(tmp_path) == ["users.csv", "users.csv.lock"]  # no temporary file left
    assert await system.get("user", "u1") == {"id": "u1", "userName": "changed"}  # kept
    await system.aclose()
    assert text(path) == "id,userName\nu1,changed\nu2,b\n"


async def test_two_instances_on_one_file(tmp_path: Path) -> None:
    write(tmp_path / "users.csv", "id,userName", "u0,zero")
    one, two = csv_system(tmp_path), csv_system(tmp_path)
    await one.create("user", {"userName": "one"}, entity_id="u1")
    await two.create("user", {"userName": "two", "title": "Dr"}, entity_id="u2")
    await one.update("user", "u0", {"userName": "ZERO"})
    await asyncio.gather(one.flush(), two.flush())
    await one.create("user", {"userName": "three"}, entity_id="u3")  # one's view is stale
    await one.aclose()
    assert sorted(e["id"] for e in await read_all(two)) == ["u0", "u1", "u2", "u3"]
    assert await two.get("user", "u0") == {"id": "u0", "userName": "ZERO"}
    assert await two.get("user", "u2") == {"id": "u2", "userName": "two", "title": "Dr"}


async def test_flush_waits_for_the_lock_of_another_process(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    system = csv_system(tmp_path)
    await system.create("user", {"userName": "a"}, entity_id="u1")
    fd = os.open(tmp_path / "users.csv.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        flush = asyncio.ensure_future(system.flush())
        await asyncio.sleep(0.2)
        assert not flush.done() and not path.exists()
    finally:
        threading.Timer(0.1, os.close, [fd]).start()
    await flush
    assert text(path) == "id,userName\r\nu1,a\r\n"


async def test_a_cancelled_flush_still_ends(tmp_path: Path) -> None:
    system = csv_system(tmp_path)
    await system.create("user", {"userName": "a"}, entity_id="u1")
    fd = os.open(tmp_path / "users.csv.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    flush = asyncio.ensure_future(system.flush())
    await asyncio.sleep(0.1)
    flush.cancel()
    await asyncio.sleep(0.1)
    assert not flush.done()  # the thread still waits for the lock
    os.close(fd)
    with pytest.raises(asyncio.CancelledError):
        await flush
    await system.create("user", {"userName": "b"}, entity_id="u2")
    await system.aclose()
    assert text(tmp_path / "users.csv") == "id,userName\r\nu1,a\r\nu2,b\r\n"


async def test_appending_without_copy_file_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*args: Any) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    path = tmp_path / "users.csv"
    path.write_bytes(b"id,userName\nu1,a")  # no line end after the last row
    system = csv_system(tmp_path)
    await system.create("user", {"userName": "b"}, entity_id="u2")
    await system.aclose()
    await system.create("user", {"userName": "c"}, entity_id="u3")
    await system.aclose()
    assert text(path) == "id,userName\nu1,a\nu2,b\nu3,c\n"


async def test_reads_see_a_whole_file_while_writing(tmp_path: Path) -> None:
    lines = ["id,userName"] + [f"u{i},user{i}" for i in range(5000)]
    write(tmp_path / "users.csv", *lines)
    reader, writer = csv_system(tmp_path, Role.SOURCE), csv_system(tmp_path)
    pages = reader.read("user")
    first = await anext(pages)
    for i in range(0, 5000, 3):
        await writer.delete("user", f"u{i}")
    await writer.aclose()
    rest = [e async for page in pages for e in page.entities]
    assert len(first.entities) + len(rest) == 5000  # the file as it was when the read began
    assert len(await read_all(reader)) == 3333


# -- checks ---------------------------------------------------------------------------------------


async def test_connection_of_a_source(tmp_path: Path) -> None:
    write(tmp_path / "users.csv", HEADER, *ROWS)
    write(tmp_path / "groups.csv", "id,displayName", "g1,A")
    message = await csv_system(tmp_path, Role.SOURCE).test_connection()
    assert message == "users.csv: 2 rows, 10 columns; groups.csv: 1 rows, 2 columns"
    (tmp_path / "groups.csv").unlink()
    with pytest.raises(ConnectionFailed, match=r"groups\.csv: cannot open the file: no such file"):
        await csv_system(tmp_path, Role.SOURCE).test_connection()


async def test_connection_of_a_target(tmp_path: Path) -> None:
    write(tmp_path / "users.csv", "id,userName", "u1,a")
    message = await csv_system(tmp_path).test_connection()
    assert message == (
        "users.csv: 1 rows, 2 columns; its folder is writable; groups.csv: not there yet, "
        "created with a header on the first write; its folder is writable"
    )
    system = csv_system(tmp_path, csv_user_file=str(tmp_path / "new" / "u.csv"), groups=False)
    assert await system.test_connection() == (
        "new/u.csv: not there yet, created with a header on the first write; its folder is "
        "created on the first write"
    )
    assert not (tmp_path / "new").exists()


# -- end to end -----------------------------------------------------------------------------------


async def test_read_transform_write_gives_the_same_file(tmp_path: Path) -> None:
    source_dir, target_dir = tmp_path / "source", tmp_path / "target"
    source_dir.mkdir()
    target_dir.mkdir()
    write(source_dir / "users.csv", HEADER, *ROWS, "u3,zoë,Zoë,,,,,,,", end="\r\n")
    groups = ("id,displayName,members", "g1,Sales,u1|u2", "g2,Empty,")
    write(source_dir / "groups.csv", *groups, end="\r\n")
    source, target = csv_system(source_dir, Role.SOURCE), csv_system(target_dir)
    read = Transformation(default_transformation("csv", "read"))
    write_ = Transformation(default_transformation("csv", "write"))
    async with target:
        for entity_type in ("user", "group"):
            async for page in source.read(entity_type):
                for row in page.entities:
                    internal = read.apply(entity_type, row)
                    assert isinstance(internal, Transformed), internal
                    assert internal.document["schemas"][0].endswith(entity_type.capitalize())
                    source_id = internal.variables["entityIdSourceSystem"]
                    outgoing = write_.apply(entity_type, internal.document, operation="create")
                    assert isinstance(outgoing, Transformed), outgoing
                    written = await target.create(
                        entity_type, outgoing.document, entity_id=source_id
                    )
                    assert written.id == source_id
    for name in ("users.csv", "groups.csv"):
        assert text(target_dir / name) == text(source_dir / name)
    assert json.dumps(await read_all(target)) == json.dumps(await read_all(source))
