"""Slow, salted hashes for client secrets and user passwords (Argon2id, RFC 9106)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
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
    """Remembers the outcome of checking a presented secret against a stored hash, so that a
    client using HTTP Basic does not pay for Argon2 on every request.

    Entries are keyed by the stored hash, so a rotated or deleted secret no longer matches,
    and by an HMAC of the presented secret under a per-process random key, so the cache
    holds nothing that reveals or verifies a secret outside this process. Successes are
    remembered while in use, failures for a minute (a client retrying a wrong secret costs
    one hash a minute). Concurrent checks of the same pair share one Argon2 computation.
    """

    def __init__(self, size: int = 4096, failure_seconds: float = 60.0) -> None:
        self._key = secrets.token_bytes(32)
        self._known: OrderedDict[tuple[str, bytes], float] = OrderedDict()  # -> expiry
        self._pending: dict[tuple[str, bytes], threading.Event] = {}
        self._size = size
        self._failure_seconds = failure_seconds
        self._lock = threading.Lock()

    def _pair(self, secret_hash: str, secret: str) -> tuple[str, bytes]:
        return secret_hash, hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    def _lookup(self, key: tuple[str, bytes]) -> bool | None:
        """True or False when the outcome is remembered, None when it must be computed."""
        expiry = self._known.get(key)
        if expiry is None:
            return None
        if expiry == 0.0:  # a success
            self._known.move_to_end(key)
            return True
        if expiry > time.monotonic():
            return False
        del self._known[key]
        return None

    def known(self, secret_hash: str, secret: str) -> bool:
        """Whether this pair is remembered as verified (no Argon2 work)."""
        with self._lock:
            return self._lookup(self._pair(secret_hash, secret)) is True

    def verify(self, secret_hash: str, secret: str) -> bool:
        key = self._pair(secret_hash, secret)
        while True:
            with self._lock:
                outcome = self._lookup(key)
                if outcome is not None:
                    return outcome
                waiting = self._pending.get(key)
                if waiting is None:
                    self._pending[key] = threading.Event()
                    break
            waiting.wait()  # another thread is computing this very pair
        ok: bool | None = None
        try:
            ok = verify_secret(secret_hash, secret)
        finally:
            with self._lock:
                done = self._pending.pop(key)
                if ok is not None:
                    self._known[key] = 0.0 if ok else time.monotonic() + self._failure_seconds
                    while len(self._known) > self._size:
                        self._known.popitem(last=False)
            done.set()
        return ok
