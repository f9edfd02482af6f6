"""Secrets, tokens and permissions, without a server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from provisor.auth.keys import derive_key, load_master_key
from provisor.auth.passwords import VerifiedSecrets, hash_secret, secret_hasher, verify_secret
from provisor.auth.permissions import Principal
from provisor.auth.tokens import TokenSigner
from provisor.context import Context, Permission, parse_permissions
from provisor.errors import ConfigError
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.storage import tables as t
from provisor.types import EntityType
from tests.helpers import user_body

CTX = Context.system("tests")
CHEAP = secret_hasher(1, 32)  # where the costs do not matter


def test_secret_hashes_are_argon2id_and_salted() -> None:
    first, second = hash_secret("s3cret"), hash_secret("s3cret")
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and first != second  # RFC 9106
    assert verify_secret(first, "s3cret") and not verify_secret(first, "S3cret")
    assert not verify_secret("garbage", "s3cret")


def test_services_hash_with_the_costs_of_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_hash_iterations=2, secret_hash_memory_kib=64)
    services = Services.open(settings)
    try:
        migrate.upgrade(services.db)
        _, made = services.clients.create(CTX, "costs", ["manage_users"])
        services.directory.create(
            CTX, EntityType.USER, {**user_body("costs"), "password": "Passw0rd!"}, "/scim"
        )
        with services.db.unscoped_read() as conn:
            stored = [
                *conn.execute(select(t.client_secrets.c.secret_hash)).scalars(),
                *conn.execute(select(t.users.c.password_hash)).scalars(),
            ]
        assert [h.split("$")[3] for h in stored] == ["m=64,t=2,p=4"] * 2
        assert services.clients.authenticate_secret("default", made.client_id, made.client_secret)
    finally:
        services.close()


def test_verified_secrets_cache_only_remembers_successes() -> None:
    cache = VerifiedSecrets(size=2)
    stored = hash_secret("right", CHEAP)
    assert not cache.known("c", stored, "right")
    assert cache.verify("c", stored, "right") and cache.known("c", stored, "right")
    assert not cache.verify("c", stored, "wrong") and not cache.known("c", stored, "wrong")
    other = hash_secret("right", CHEAP)  # a rotated secret has another hash
    assert not cache.known("c", other, "right")


def test_tokens_expire_and_are_bound_to_the_key() -> None:
    signer = TokenSigner(b"k" * 32, ttl_seconds=60)
    claims = signer.verify(
        signer.issue("client-1", frozenset({"manage_users"}), "secret-1", "acme")
    )
    assert claims is not None and claims.client_id == "client-1"
    assert claims.secret_id == "secret-1"
    assert claims.tenant == "acme"
    assert claims.scope == {"manage_users"}
    assert claims.expires_at - time.time() == pytest.approx(60, abs=2)
    assert TokenSigner(b"o" * 32, 60).verify(signer.issue("c", frozenset(), "s", "default")) is None
    expired = TokenSigner(b"k" * 32, ttl_seconds=-10)
    assert signer.verify(expired.issue("c", frozenset(), "s", "default")) is None


def test_master_key_file_is_private_and_stable(tmp_path) -> None:
    key = load_master_key(None, tmp_path)
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_master_key(None, tmp_path) == key
    assert derive_key(key, "a") != derive_key(key, "b")
    with pytest.raises(ConfigError):
        load_master_key("short", tmp_path)


def test_permissions() -> None:
    assert parse_permissions(["manage_users", " ADMIN "]) == {
        Permission.MANAGE_USERS,
        Permission.ADMIN,
    }
    with pytest.raises(ValueError, match="unknown permission"):
        parse_permissions(["root"])
    admin = Principal(
        client_id="a",
        tenant="default",
        name="a",
        permissions=frozenset({Permission.ADMIN}),
        method="basic",
    )
    assert admin.actor().allows(Permission.PROXY_API)
    assert not admin.actor().allows(Permission.OPERATOR)  # the installation's, not a tenant's
    users = Principal(
        client_id="u",
        tenant="default",
        name="u",
        method="basic",
        permissions=frozenset({Permission.MANAGE_USERS}),
    )
    assert users.actor().allows(Permission.MANAGE_USERS, Permission.MANAGE_GROUPS)
    assert not users.actor().allows(Permission.MANAGE_GROUPS)


def test_concurrent_checks_of_one_pair_share_one_hash(monkeypatch) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from provisor.auth import passwords

    calls = []
    real = passwords.verify_secret
    gate = threading.Event()

    def slow_verify(stored: str, secret: str) -> bool:
        calls.append(secret)
        gate.wait(5)
        return real(stored, secret)

    monkeypatch.setattr(passwords, "verify_secret", slow_verify)
    cache = VerifiedSecrets()
    stored = hash_secret("right", CHEAP)
    with ThreadPoolExecutor(8) as pool:
        results = [pool.submit(cache.verify, "c", stored, "right") for _ in range(8)]
        time.sleep(0.2)
        gate.set()
        assert all(r.result() for r in results)
    assert calls == ["right"]
    assert not cache.verify("c", stored, "wrong") and not cache.verify("c", stored, "wrong")
    assert calls == ["right", "wrong"]  # a failure is remembered too
