"""provisor backup and restore: an online SQLite backup while a real server writes, restored
into a new installation that serves the data; what restore refuses."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from provisor.backup import MANIFEST, backup, restore
from provisor.errors import ConfigError
from provisor.runtime import Services, initialise
from provisor.settings import Settings
from provisor.web.app import create_app
from tests.conftest import (
    PG_ADMIN_URL,
    create_pg_database,
    drop_pg_database,
    free_port,
    pg_url,
    uvicorn_thread,
)
from tests.helpers import user_body, wait_until_serving

PROVISOR = [sys.executable, "-m", "provisor"]
MAX_BODY = 8192  # the served installations' configuration file sets it


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env.update(PROVISOR_SECRET_HASH_ITERATIONS="1", PROVISOR_SECRET_HASH_MEMORY_KIB="32")
    return env


def _provisor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROVISOR, *args], capture_output=True, text=True, env=_env(), timeout=120, check=False
    )


@contextmanager
def _served(folder: Path) -> Iterator[str]:
    """``provisor serve --config FILE`` (one worker process, SQLite) on ``folder``, the file
    naming the folder and a small body limit; its URL."""
    port = free_port()
    log = (folder.parent / f"{folder.name}-serve.log").open("w")
    config = folder.parent / f"{folder.name}.toml"  # read by serve and its worker processes
    config.write_text(f'data_dir = "{folder}"\nmax_body_bytes = {MAX_BODY}\n')
    process = subprocess.Popen(
        [*PROVISOR, "serve", "--port", str(port), "--config", str(config), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, Path(log.name))
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def _users_in(archive: Path, scratch: Path) -> int:
    """Users in the backup's database, read with sqlite3 after its integrity check."""
    with tarfile.open(archive) as tar:
        handle = tar.extractfile("provisor.db")
        assert handle is not None
        (scratch / "copy.db").write_bytes(handle.read())
    conn = sqlite3.connect(scratch / "copy.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.slow  # starts provisor, PostgreSQL's tools or Caddy as processes
def test_backup_while_writing_restores_into_a_serving_installation(tmp_path: Path) -> None:
    live_dir, restored_dir = tmp_path / "live", tmp_path / "restored"
    archive = tmp_path / "provisor.backup"
    stop = threading.Event()
    created: list[str] = []

    with _served(live_dir) as url:
        admin = json.loads((live_dir / "initial-admin.json").read_text())
        auth = (admin["client_id"], admin["client_secret"])
        big = user_body(displayName="x" * MAX_BODY)  # the file's limit, in the worker process
        assert httpx.post(url + "/scim/Users", json=big, auth=auth).status_code == 413

        def write() -> None:
            with httpx.Client(base_url=url + "/scim", auth=auth, timeout=60) as client:
                while not stop.is_set():
                    answer = client.post("/Users", json=user_body())
                    assert answer.status_code == 201, answer.text
                    created.append(answer.json()["id"])

        writer = threading.Thread(target=write)
        writer.start()
        try:
            while len(created) < 20:  # the writer is under way
                assert writer.is_alive()
                time.sleep(0.05)
            before = len(created)
            made = _provisor("backup", str(archive), "--data-dir", str(live_dir))
            after = len(created)
        finally:
            stop.set()
            writer.join(timeout=60)
        assert made.returncode == 0, made.stderr
        assert "master key is NOT in this backup" in made.stderr
        # a running installation is never restored over
        with pytest.raises(ConfigError, match=r"is in use.*stop every provisor"):
            restore(Settings(data_dir=live_dir), archive)

    users = _users_in(archive, tmp_path)
    assert before <= users <= after  # a snapshot taken while the writes went on
    assert len(created) > users  # and they went on after it

    # restored without the key in it: the installation's key file must be there first
    restored = Settings(data_dir=restored_dir)
    with pytest.raises(ConfigError, match="holds no master key"):
        restore(restored, archive)
    restored_dir.mkdir(mode=0o700)
    (restored_dir / "secret.key").write_bytes((live_dir / "secret.key").read_bytes())
    restore(restored, archive)
    assert initialise(restored).admin_file is None  # the next start: the backup's admin serves
    services = Services.open(restored)
    try:
        with uvicorn_thread(create_app(restored, services), lifespan="on") as port:
            listed = httpx.get(
                f"http://127.0.0.1:{port}/scim/Users", params={"count": 0}, auth=auth, timeout=30
            )
    finally:
        services.close()
    assert listed.status_code == 200, listed.text
    assert listed.json()["totalResults"] == users


@pytest.fixture
def installation(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data")
    initialise(settings)
    files = settings.data_dir / "tenants" / "default" / "csv"
    files.mkdir(parents=True)
    (files / "users.csv").write_text("id,name\n1,Ada\n")
    return settings


def test_the_key_and_the_tenants_files_travel_only_as_asked(
    installation: Settings, tmp_path: Path
) -> None:
    plain = backup(installation, tmp_path / "plain.backup")
    keyed = backup(installation, tmp_path / "keyed.backup", include_key=True)
    with tarfile.open(tmp_path / "plain.backup") as tar:
        names = set(tar.getnames())
    assert names == {MANIFEST, "provisor.db", "tenants/default/csv/users.csv"}
    assert not plain.key and keyed.key and "secret.key" in keyed.files
    assert os.stat(tmp_path / "keyed.backup").st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="exists"):
        backup(installation, tmp_path / "plain.backup")

    elsewhere = Settings(data_dir=tmp_path / "elsewhere")
    restore(elsewhere, tmp_path / "keyed.backup")
    key = (installation.data_dir / "secret.key").read_bytes()
    assert (elsewhere.data_dir / "secret.key").read_bytes() == key
    restored = elsewhere.data_dir / "tenants" / "default" / "csv" / "users.csv"
    assert restored.read_text() == "id,name\n1,Ada\n"
    assert not (elsewhere.data_dir / "initial-admin.json").exists()


def test_restore_refuses_a_backup_made_under_another_key(
    installation: Settings, tmp_path: Path
) -> None:
    archive = tmp_path / "plain.backup"
    backup(installation, archive)
    other = Settings(data_dir=tmp_path / "other")
    initialise(other)  # another installation: its own key
    with pytest.raises(ConfigError, match="another master key"):
        restore(other, archive)
    key = (installation.data_dir / "secret.key").read_bytes()
    (other.data_dir / "secret.key").write_bytes(key)  # the key of the backup's time
    restore(other, archive)
    initialise(other)  # starts: the key is the database's


def _rewrite(source: Path, target: Path, change: dict[str, bytes]) -> None:
    """A copy of a backup with some members' contents replaced (or added)."""
    with tarfile.open(source) as tar, tarfile.open(target, "w:gz") as out:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            data = change.pop(member.name, None) or handle.read()
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
        for name, data in change.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def _manifest(archive: Path) -> dict[str, object]:
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(MANIFEST)
        assert handle is not None
        loaded: dict[str, object] = json.loads(handle.read())
        return loaded


def test_restore_refuses_damaged_foreign_and_future_backups(
    installation: Settings, tmp_path: Path
) -> None:
    good = tmp_path / "good.backup"
    backup(installation, good, include_key=True)
    target = Settings(data_dir=tmp_path / "target")
    cases: dict[str, tuple[dict[str, bytes], str]] = {
        "damaged": ({"tenants/default/csv/users.csv": b"id,name\n1,Eve\n"}, "SHA-256 differs"),
        "smuggled": ({"../evil": b"x"}, "not those its manifest lists"),
    }
    manifest = _manifest(good)
    manifest["revision"] = "9999"
    cases["future"] = ({MANIFEST: json.dumps(manifest).encode()}, "not the one its manifest")
    for name, (change, message) in cases.items():
        bad = tmp_path / f"{name}.backup"
        _rewrite(good, bad, change)
        with pytest.raises(ConfigError, match=message):
            restore(target, bad)
    (tmp_path / "junk.backup").write_bytes(b"not a tar")
    with pytest.raises(ConfigError, match="no readable provisor backup"):
        restore(target, tmp_path / "junk.backup")
    assert not target.data_dir.exists()  # nothing was touched


def test_restore_refuses_a_migration_it_does_not_know(
    installation: Settings, tmp_path: Path
) -> None:
    db = installation.data_dir / "provisor.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    backup(installation, tmp_path / "future.backup", include_key=True)
    with pytest.raises(ConfigError, match=r"migration 9999, which this provisor.*does not know"):
        restore(Settings(data_dir=tmp_path / "target"), tmp_path / "future.backup")
    with pytest.raises(ConfigError, match="a newer provisor migrated it"):  # nor upgrades it
        initialise(installation)


def test_postgresql_is_backed_up_with_its_own_tools(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://provisor@127.0.0.1/x")
    for attempt in (
        lambda: backup(settings, tmp_path / "b"),
        lambda: restore(settings, tmp_path / "b"),
    ):
        with pytest.raises(ConfigError, match="pg_dump -Fc"):
            attempt()


@pytest.mark.slow  # starts provisor, PostgreSQL's tools or Caddy as processes
def test_postgresql_dump_and_restore(tmp_path: Path) -> None:
    """docs/operations.md's pg_dump and pg_restore: as a role that bypasses row-level
    security (the tables FORCE it on their owner), into a database owned by provisor's role;
    the restored database serves the same credentials with the same master key."""
    name = f"provisor_dump_{uuid.uuid4().hex[:10]}"
    create_pg_database(name)
    create_pg_database(name + "_restored")
    try:
        key = "k" * 40
        settings = Settings(data_dir=tmp_path, database_url=pg_url(name), secret_key=key)
        initialise(settings)
        admin = json.loads((tmp_path / "initial-admin.json").read_text())
        superuser = PG_ADMIN_URL.rsplit("/", 1)[0]
        dump = tmp_path / "provisor.dump"
        for command in (
            ["pg_dump", "--format=custom", f"--file={dump}", f"{superuser}/{name}"],
            ["pg_restore", "--exit-on-error", f"--dbname={superuser}/{name}_restored", str(dump)],
        ):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr
        restored = Settings(
            data_dir=tmp_path, database_url=pg_url(name + "_restored"), secret_key=key
        )
        assert initialise(restored).admin_file is None  # at head, with its clients
        services = Services.open(restored)
        try:
            principal = services.clients.authenticate_secret(
                "default", admin["client_id"], admin["client_secret"]
            )
            assert principal is not None
            assert not services.db.bypasses_row_security()  # provisor's own role
        finally:
            services.close()
    finally:
        drop_pg_database(name)
        drop_pg_database(name + "_restored")
