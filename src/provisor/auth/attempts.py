"""Budgets for unauthenticated and failed-authentication traffic: per client address and,
with a doubling backoff, per client id."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("provisor.auth")

BACKOFF_AFTER = 5  # consecutive failures of one client id before it must wait
BACKOFF_MAX_SECONDS = 60.0
TABLE_SIZE = 10_000  # addresses and client ids remembered (least recently seen forgotten)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    throttled: bool = False


@dataclass(slots=True)
class _Client:
    failures: int = 0
    until: float = 0.0


def address_key(address: str) -> str:
    """The key of a client address: the address, or its /64 network for IPv6 (one host
    usually holds a whole /64)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        mapped = parsed.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class AttemptLimiter:
    """Failed or missing authentication spends a token of the caller's address (``per_minute``
    a minute, refilled continuously); an address without tokens is refused (HTTP 429) until
    one is back. ``BACKOFF_AFTER`` consecutive failures for one client id make that id wait
    1 s, then 2, 4 ... up to a minute before its secret is checked again.

    In memory, per process, in bounded tables. ``failures`` and ``throttled`` count for
    metrics: failed attempts, and attempts refused because of this budget or backoff.
    """

    def __init__(
        self,
        per_minute: int,
        table_size: int = TABLE_SIZE,
        *,
        on_burst: Callable[[str, str, str], None] | None = None,
    ) -> None:
        """``on_burst(tenant, kind, who)``: told when an address spends its budget (kind
        ``address``) or a client id or name starts to back off (kind ``name``), for the
        failures the callers counted with their tenant; it must return at once."""
        self.per_minute = per_minute
        self.on_burst = on_burst
        self._rate = per_minute / 60.0
        self._size = table_size
        self._addresses: OrderedDict[str, _Bucket] = OrderedDict()
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._lock = threading.Lock()
        self.failures = 0
        self.throttled = 0

    def blocked(self, address: str, client_id: str | None = None) -> float:
        """Seconds until this address (and client id) may try to authenticate; 0: now."""
        if not self.per_minute:
            return 0.0
        now = time.monotonic()
        with self._lock:
            bucket = self._bucket(address_key(address), now)
            wait = 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self._rate
            if client_id is not None:
                entry = self._clients.get(client_id)
                if entry is not None and entry.until > now:
                    wait = max(wait, entry.until - now)
            if wait:
                self.throttled += 1
            return wait

    def failed(
        self, address: str, client_id: str | None = None, *, tenant: str | None = None
    ) -> float:
        """Count a failed or missing authentication (in ``tenant``: the one the request
        addressed, whose subscribers hear of bursts); the seconds the caller must now wait
        when its address had no token left for it (0: it had)."""
        if not self.per_minute:
            return 0.0
        now = time.monotonic()
        key = address_key(address)
        bursts: list[tuple[str, str]] = []
        with self._lock:
            self.failures += 1
            if client_id is not None and self._client_failed(client_id, now):
                bursts.append(("name", client_id))
            bucket = self._bucket(key, now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                wait = 0.0
            else:
                self.throttled += 1
                if not bucket.throttled:
                    bucket.throttled = True
                    bursts.append(("address", key))
                    log.warning(
                        "authentication attempts throttled",
                        address=key,
                        per_minute=self.per_minute,
                    )
                wait = (1 - bucket.tokens) / self._rate
        if tenant is not None and self.on_burst is not None:
            for kind, who in bursts:
                self.on_burst(tenant, kind, who)
        return wait

    def succeeded(self, client_id: str) -> None:
        """The client id proved its secret: its failures are forgiven."""
        with self._lock:
            self._clients.pop(client_id, None)

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._addresses.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.per_minute), now)
            self._addresses[key] = bucket
            if len(self._addresses) > self._size:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(key)
            bucket.tokens = min(
                float(self.per_minute), bucket.tokens + (now - bucket.updated) * self._rate
            )
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.throttled = False
        return bucket

    def _client_failed(self, client_id: str, now: float) -> bool:
        """Count a failure of ``client_id``; whether it now starts to back off."""
        entry = self._clients.get(client_id)
        if entry is None:
            entry = _Client()
            self._clients[client_id] = entry
            if len(self._clients) > self._size:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client_id)
        entry.failures += 1
        if entry.failures < BACKOFF_AFTER:
            return False
        seconds = min(BACKOFF_MAX_SECONDS, 2.0 ** (entry.failures - BACKOFF_AFTER))
        entry.until = now + seconds
        log.warning(
            "client id backs off after failed authentications",
            client_id=client_id,
            failures=entry.failures,
            seconds=seconds,
        )
        return entry.failures == BACKOFF_AFTER


def retry_after(seconds: float) -> int:
    """Whole seconds for a Retry-After header (at least one)."""
    return max(1, math.ceil(seconds))
