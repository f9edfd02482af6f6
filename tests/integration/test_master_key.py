"""The master key: the database's check value refuses a node with another key (serve, worker,
init, the local commands), and ``provisor keys rotate`` re-encrypts everything it protects
under a new key, resumably."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from provisor.admins.model import Role as AdminRole
from provisor.admins.model import SsoSettings
from provisor.auth.keys import KEY_FILE, create_key_file, read_key_file
from provisor.cli import app
from provisor.context import Context
from provisor.errors import ConfigError, MasterKeyError
from provisor.installation.keys import (
    CHECK,
    ENCRYPTED,
    NEW_KEY_FILE,
    Encrypted,
    MasterKey,
    decrypts,
)
from provisor.runtime import Services, initialise, rotate_master_key
from provisor.settings import Settings
from provisor.storage import tables as t
from provisor.storage.database import Database
from tests.conftest import CTX, free_port
from tests.integration.test_systems import scim_target

PASSWORD = "s3cret-Pa55"


def fill(services: Services, systems: int = 1) -> list[str]:
    """Something of every kind the master key encrypts; the systems' ids."""
    ids = []
    for n in range(systems):
        system = services.systems.create(CTX, scim_target(f"Target {n}"))
        services.certificates.generate_outbound(CTX, system.id)  # the tenant CA's key too
        ids.append(system.id)
    services.administrators.create(CTX, "ada", AdminRole.ADMINISTRATOR)
    ada = Context(services.administrators.show(CTX, "ada").actor(), "default")
    secret, _ = services.administrators.begin_second_factor(ada)
    services.administrators.confirm_second_factor(ada, pyotp.TOTP(secret).now())
    services.administrators.create(CTX, "bob", AdminRole.ADMINISTRATOR)
    bob = Context(services.administrators.show(CTX, "bob").actor(), "default")
    services.administrators.begin_second_factor(bob)  # pending
    services.administrators.set_sso(
        CTX,
        SsoSettings(
            label="Corp",
            issuer="https://idp.example.org",
            client_id="provisor",
            client_secret="sso-secret",
            role_claim="groups",
            administrator_values=("admins",),
            viewer_values=(),
        ),
    )
    services.notifications.subscribe(
        CTX, {"topic": "login", "channel": "webhook", "address": "https://hooks.example.org/x"}
    )
    return ids


def tokens(db: Database, column: Encrypted) -> list[str]:
    with db.unscoped_read() as conn:
        query = select(column.table.c[column.column]).where(*column.where())
        return [str(v) for v in conn.execute(query).scalars()]


def assert_only(db: Database, key: bytes, other: bytes) -> None:
    """Every encrypted value of every kind decrypts with ``key``, none with ``other``."""
    for column in ENCRYPTED:
        found = tokens(db, column)
        assert found, column.name  # fill() stored one of each
        assert all(decrypts(key, column, token) for token in found), column.name
        assert not any(decrypts(other, column, token) for token in found), column.name


def master(settings: Settings) -> bytes:
    return read_key_file(settings.data_dir / KEY_FILE)


def test_rotation_reencrypts_everything_and_the_old_key_is_refused(settings: Settings) -> None:
    initialise(settings)
    with_old = Services.open(settings)
    old = master(settings)
    try:
        system_id = fill(with_old)[0]
        assert_only(with_old.db, old, b"x" * 44)
    finally:
        with_old.close()

    rotation = rotate_master_key(settings)
    new = master(settings)
    assert new != old and not (settings.data_dir / NEW_KEY_FILE).exists()
    assert rotation.counts["system_properties.value"] == 1
    assert rotation.counts["administrators.totp_pending"] == 1
    assert rotation.counts == {column.name: 1 for column in ENCRYPTED}

    services = Services.open(settings)
    try:
        assert_only(services.db, new, old)
        services.master_key.verify()  # the new key starts
        assert services.systems.effective_properties(CTX, system_id)["Password"] == PASSWORD
        assert services.certificates.active_pair(CTX, system_id) is not None
        assert services.administrators.sso_settings(CTX).client_secret == "sso-secret"  # type: ignore[union-attr]
        with pytest.raises(MasterKeyError, match="is not the installation's"):
            MasterKey(services.db, old, "the old key", settings.data_dir).verify()
        assert MasterKey(services.db, old, "old", settings.data_dir).state() is not None
    finally:
        services.close()


def test_an_interrupted_rotation_refuses_starts_and_resumes(settings: Settings) -> None:
    initialise(settings)
    services = Services.open(settings)
    ids = fill(services, systems=3)
    old = master(settings)

    def crash(column: Encrypted, done: int) -> None:
        if column.table is t.system_properties and done == 2:
            raise RuntimeError("the power went out")

    with pytest.raises(RuntimeError, match="power"):
        rotate_master_key(settings, batch=1, progress=crash)
    pending = settings.data_dir / NEW_KEY_FILE
    new = read_key_file(pending)
    assert master(settings) == old  # the key file is still the old one
    found = tokens(services.db, ENCRYPTED[0])
    assert sum(decrypts(new, ENCRYPTED[0], token) for token in found) == 2  # two batches done
    with pytest.raises(MasterKeyError, match="rotation is under way"):
        services.master_key.verify()  # no node starts half-way
    assert services.master_key.state() == "a master key rotation is under way"
    services.close()

    rotation = rotate_master_key(settings)  # again: it resumes with secret.key.new
    assert rotation.counts["system_properties.value"] == 3
    assert master(settings) == new and not pending.exists()
    services = Services.open(settings)
    try:
        services.master_key.verify()
        assert_only(services.db, new, old)
        for system_id in ids:
            assert services.systems.effective_properties(CTX, system_id)["Password"] == PASSWORD
    finally:
        services.close()


def test_a_rotation_stopped_after_the_database_switched_finishes_with_the_file_swap(
    sqlite_settings: Settings,
) -> None:
    settings = sqlite_settings
    initialise(settings)
    services = Services.open(settings)
    fill(services)
    services.close()
    old = master(settings)
    (settings.data_dir / NEW_KEY_FILE).write_bytes(b"n" * 44)
    (settings.data_dir / NEW_KEY_FILE).chmod(0o600)
    from provisor.installation.rotation import rotate

    db = Database(settings.sqlalchemy_url)
    rotate(db, old, b"n" * 44)  # the database switched, the files did not
    refused = CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(settings.data_dir)])
    assert refused.exit_code == 1
    assert "run it again to finish" in " ".join(refused.output.split())

    finished = CliRunner().invoke(
        app, ["keys", "rotate", "--yes", "--data-dir", str(settings.data_dir)]
    )
    assert finished.exit_code == 0, finished.output
    assert "Re-encrypted 0 value(s)" in finished.output
    assert master(settings) == b"n" * 44
    assert_only(db, b"n" * 44, old)
    db.dispose()


def test_rotation_with_provisor_secret_key_needs_the_new_key_file(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "o" * 40, "n" * 40
    settings = Settings(data_dir=sqlite_settings.data_dir, secret_key=old)
    monkeypatch.setenv("PROVISOR_SECRET_KEY", old)
    initialise(settings)
    services = Services.open(settings)
    fill(services)
    services.close()
    folder = ["--data-dir", str(settings.data_dir)]

    without = CliRunner().invoke(app, ["keys", "rotate", "--yes", *folder])
    assert without.exit_code == 1 and "--new-key-file" in without.output
    key_file = tmp_path / "new.key"
    key_file.write_text(new)
    rotated = CliRunner().invoke(
        app, ["keys", "rotate", "--yes", "--new-key-file", str(key_file), *folder]
    )
    assert rotated.exit_code == 0, rotated.output
    assert "Set PROVISOR_SECRET_KEY" in rotated.output

    refused = CliRunner().invoke(app, ["init", *folder])
    assert refused.exit_code == 1 and "PROVISOR_SECRET_KEY" in refused.output
    monkeypatch.setenv("PROVISOR_SECRET_KEY", new)
    assert CliRunner().invoke(app, ["init", *folder]).exit_code == 0
    db = Database(settings.sqlalchemy_url)
    assert_only(db, new.encode(), old.encode())
    db.dispose()


def test_rotation_refuses_while_a_job_runner_beats(sqlite_settings: Settings) -> None:
    initialise(sqlite_settings)
    services = Services.open(sqlite_settings)
    services.jobs.beat(Context.system("worker"), "host:1", "2026-01-01T00:00:00.000000Z")
    services.close()
    with pytest.raises(ConfigError, match="stop every provisor serve"):
        rotate_master_key(sqlite_settings)
    assert not (sqlite_settings.data_dir / NEW_KEY_FILE).exists()


def test_a_second_node_with_its_own_key_refuses_to_start(pg_database: str, tmp_path: Path) -> None:
    """Two data folders, two keys, one PostgreSQL database: the second node refuses to start
    (init, serve, worker, a local command), before and after the first wrote the check
    value."""
    first = Settings(data_dir=tmp_path / "a", database_url=pg_database)
    second = tmp_path / "b"
    second.mkdir()
    create_key_file(second / KEY_FILE)  # its own key, made before it joined
    initialise(first)
    services = Services.open(first)
    fill(services)
    with services.db.unscoped_write() as conn:  # as before the check value existed (0018)
        conn.execute(delete(t.installation))
    services.close()

    def run(*args: str) -> str:
        env = {"PROVISOR_DATABASE_URL": pg_database, "PROVISOR_DATA_DIR": str(second)}
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == 1, result.output
        return " ".join(result.output.split())

    refused = run("init")
    assert f"master key ({second.resolve() / KEY_FILE})" in refused
    assert "it cannot decrypt system_properties.value" in refused
    assert "PROVISOR_SECRET_KEY" in refused
    initialise(first)  # the first node's key decrypts: it writes the check value
    for args in (
        ("init",),
        ("serve", "--port", str(free_port()), "--workers", "1"),
        ("worker",),
        ("db", "upgrade"),
    ):
        assert "recorded another key" in run(*args), args
    db = Database(pg_database)
    with db.unscoped_read() as conn:
        assert conn.execute(select(t.installation.c.name)).scalars().all() == [CHECK]
    db.dispose()


def test_the_check_value_is_written_once_by_the_first_node(sqlite_settings: Settings) -> None:
    """Of two nodes checking an empty database at once, the second finds the first's value."""
    db = Database(sqlite_settings.sqlalchemy_url)
    MasterKey(db, b"a" * 44, "first", sqlite_settings.data_dir).verify()
    with pytest.raises(MasterKeyError):
        MasterKey(db, b"b" * 44, "second", sqlite_settings.data_dir).verify()
    with db.unscoped_write() as conn:
        conn.execute(update(t.installation).values(value="0" * 64))
    with pytest.raises(MasterKeyError):
        MasterKey(db, b"a" * 44, "first", sqlite_settings.data_dir).verify()
    db.dispose()
