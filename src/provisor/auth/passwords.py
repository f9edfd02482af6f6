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

STANDARD = PasswordHasher()  # Argon2id, t=3, m=64 MiB, p=4: RFC 9106's second recommendation


def secret_hasher(iterations: int, memory_kib: int) -> PasswordHasher:
    """Argon2id with these costs and four lanes (a hash records its own costs: any verifies)."""
    return PasswordHasher(time_cost=iterations, memory_cost=memory_kib, parallelism=4)


def hash_secret(secret: str, hasher: PasswordHasher = STANDARD) -> str:
    return hasher.hash(secret)


def verify_secret(secret_hash: str, secret: str) -> bool:
    try:
        return STANDARD.verify(secret_hash, secret)  # with the costs the hash records
    except (VerificationError, InvalidHashError):
        return False


class VerifiedSecrets:
    """Remembers the outcome of checking a presented secret against a stored hash, so that a
    client using HTTP Basic does not pay for Argon2 on every request.

    Entries are keyed by the stored hash, so a rotated or deleted secret no longer matches,
    and by an HMAC of the client id and the presented secret under a per-process random key
    (a decoy hash shared by unknown ids is remembered per id, as a real one), so the cache
    holds nothing that reveals or verifies a secret outside this process. Successes are
    remembered while in use, failures for a minute (a client retrying a wrong secret costs
    one hash a minute), each in a table of its own: a flood of wrong secrets cannot push
    proven ones out. Concurrent checks of the same pair share one Argon2 computation.
    """

    def __init__(self, size: int = 4096, failure_seconds: float = 60.0) -> None:
        self._key = secrets.token_bytes(32)
        self._proven: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._failed: OrderedDict[tuple[str, bytes], float] = OrderedDict()  # -> expiry
        self._pending: dict[tuple[str, bytes], threading.Event] = {}
        self._size = size
        self._failure_seconds = failure_seconds
        self._lock = threading.Lock()

    def _pair(self, client_id: str, secret_hash: str, secret: str) -> tuple[str, bytes]:
        presented = f"{client_id}\0{secret}".encode()
        return secret_hash, hmac.new(self._key, presented, hashlib.sha256).digest()

    def _lookup(self, key: tuple[str, bytes]) -> bool | None:
        """True or False when the outcome is remembered, None when it must be computed."""
        if key in self._proven:
            self._proven.move_to_end(key)
            return True
        expiry = self._failed.get(key)
        if expiry is None:
            return None
        if expiry > time.monotonic():
            return False
        del self._failed[key]
        return None

    def known(self, client_id: str, secret_hash: str, secret: str) -> bool:
        """Whether this secret is remembered as verified (no Argon2 work)."""
        with self._lock:
            return self._lookup(self._pair(client_id, secret_hash, secret)) is True

    def verify(self, client_id: str, secret_hash: str, secret: str) -> bool:
        key = self._pair(client_id, secret_hash, secret)
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
                if ok:
                    self._proven[key] = None
                    if len(self._proven) > self._size:
                        self._proven.popitem(last=False)
                elif ok is not None:
                    self._failed[key] = time.monotonic() + self._failure_seconds
                    if len(self._failed) > self._size:
                        self._failed.popitem(last=False)
            done.set()
        return ok
