"""The master key of a provisor installation and the keys derived from it."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from provisor.errors import ConfigError

KEY_FILE = "secret.key"


def load_master_key(secret_key: str | None, data_dir: Path) -> bytes:
    """The master key: PROVISOR_SECRET_KEY if set, else <data-dir>/secret.key (created once)."""
    if secret_key is not None:
        if len(secret_key) < 32:
            raise ConfigError("PROVISOR_SECRET_KEY must be at least 32 characters long.")
        return secret_key.encode()
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        create_key_file(path)
    return read_key_file(path)


def create_key_file(path: Path, key: bytes | None = None) -> bool:
    """Write ``key`` (else a new random one) to ``path``, readable only by its owner, unless
    the file exists (another process created it first); whether this call wrote it. The file
    is on disk (fsync) when this returns."""
    encoded = key if key is not None else base64.urlsafe_b64encode(secrets.token_bytes(32))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(encoded)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read_key_file(path: Path) -> bytes:
    """The key a key file holds (32 characters or more)."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"Cannot read the key file {path}: {exc.strerror or exc}") from exc
    if len(key) < 32:
        raise ConfigError(f"{path} is damaged: it must hold a key of 32 or more characters.")
    return key


def derive_key(master: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose (token signing, encryption, ...), independent of the others."""
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=b"provisor", info=purpose.encode()
    ).derive(master)
