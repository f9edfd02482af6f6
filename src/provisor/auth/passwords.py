"""Slow, salted hashes for client secrets and user passwords (Argon2id, RFC 9106)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # Argon2id, t=3, m=64 MiB, p=4


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret_hash: str, secret: str) -> bool:
    try:
        return _hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


class VerifiedSecrets:
    """Remembers which (stored hash, presented secret) pairs verified, so that a client using
    HTTP Basic does not pay for Argon2 on every request.

    Entries are keyed by the stored hash, so a rotated or deleted secret no longer matches,
    and by an HMAC of the presented secret under a per-process random key, so the cache
    holds nothing that reveals or verifies a secret outside this process.
    """

    def __init__(self, size: int = 1024) -> None:
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def _token(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    def known(self, secret_hash: str, secret: str) -> bool:
        """Whether this pair verified before (no Argon2 work)."""
        key = (secret_hash, self._token(secret))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return True
        return False

    def verify(self, secret_hash: str, secret: str) -> bool:
        if self.known(secret_hash, secret):
            return True
        key = (secret_hash, self._token(secret))
        if not verify_secret(secret_hash, secret):
            return False
        with self._lock:
            self._entries[key] = None
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return True
