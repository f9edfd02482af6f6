"""A tenant's budget of proxy and real-time calls (spec §3.13): past the throttle rate
(150/minute by default) each call waits a second; past the maximum (200/minute) calls are
refused until the window lets one pass. The web layer spends it for every call under
``/ipsproxy/`` by a caller that is authenticated and allowed (see
:mod:`provisor.web.ratelimit`); the composition root (:mod:`provisor.runtime`) keeps one
budget per tenant.

The counting is pyrate-limiter's sliding window, in a bucket every server process shares:
an SQLite file in the data folder (with a file lock) on the embedded default, a table in
PostgreSQL otherwise.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrate_limiter import AbstractBucket, Duration, Rate, RateItem

from provisor.context import DEFAULT_TENANT
from provisor.settings import RATE_LIMITS_FILE, Settings

THROTTLE_SECONDS = 1.0
LOCK_TIMEOUT_MS = 5000  # a call refused (429) after waiting this long for the shared count
_ITEM = "tenant"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    seconds: float  # to wait before serving (throttled), or until a retry may pass (refused)


class InboundBudget:
    """One tenant's two sliding windows (throttle, maximum) over a shared store."""

    def __init__(self, settings: Settings, tenant: str = DEFAULT_TENANT) -> None:
        self.settings = settings
        self.tenant = tenant
        self.throttle = settings.inbound_throttle_per_minute
        self.maximum = settings.inbound_max_per_minute
        self._buckets: tuple[AbstractBucket | None, AbstractBucket | None] | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.throttle or self.maximum)

    def admit(self) -> Decision:
        throttle, maximum = self._open()
        if maximum is not None:
            item = RateItem(_ITEM, _now_ms())
            if not maximum.put(item):
                waiting = maximum.waiting(item)
                assert isinstance(waiting, int)
                return Decision(False, max(1, math.ceil(waiting / 1000)))
        if throttle is not None and not throttle.put(RateItem(_ITEM, _now_ms())):
            return Decision(True, THROTTLE_SECONDS)
        return Decision(True, 0.0)

    def close(self) -> None:
        """Close the buckets' connections (they open again on the next call)."""
        with self._lock:
            buckets, self._buckets = self._buckets, None
        for bucket in buckets or ():
            if bucket is not None:
                bucket.close()

    def _open(self) -> tuple[AbstractBucket | None, AbstractBucket | None]:
        with self._lock:  # opened in the process that serves (after the fork)
            if self._buckets is None:
                self._buckets = (
                    self._bucket("throttle", self.throttle),
                    self._bucket("maximum", self.maximum),
                )
            return self._buckets

    def _table(self, name: str) -> str:
        """The bucket's table: the installation's own for the default tenant, one per
        other tenant (named by a digest: tenant names need not be SQL identifiers)."""
        if self.tenant == DEFAULT_TENANT:
            return f"provisor_rate_{name}"
        digest = hashlib.sha256(self.tenant.encode()).hexdigest()[:16]
        return f"provisor_rate_{name}_{digest}"

    def _bucket(self, name: str, per_minute: int) -> AbstractBucket | None:
        if not per_minute:
            return None
        rates = [Rate(per_minute, Duration.MINUTE)]
        table = self._table(name)
        if self.settings.is_sqlite:
            from pyrate_limiter import SQLiteBucket

            path = Path(self.settings.data_dir) / RATE_LIMITS_FILE
            return SQLiteBucket.init_from_file(
                rates, table=table, db_path=str(path), use_file_lock=True
            )
        from psycopg import sql
        from psycopg_pool import ConnectionPool
        from pyrate_limiter import PostgresBucket

        from provisor.jobs.pgqueue import conninfo

        pool: Any = ConnectionPool(
            conninfo(self.settings.sqlalchemy_url),
            min_size=1,
            max_size=4,
            open=True,
            kwargs={"options": f"-c lock_timeout={LOCK_TIMEOUT_MS}"},
        )
        bucket = PostgresBucket(pool, table, rates)
        # pyrate-limiter takes the table lock with NOWAIT and refuses a call whenever another
        # holds it: calls that merely arrive together got 429. Wait for the turn instead
        # (each holds the lock for one count and one insert), bounded by lock_timeout.
        bucket._q_lock = sql.SQL("LOCK TABLE {table} IN EXCLUSIVE MODE").format(
            table=sql.Identifier(bucket._full_tbl)
        )
        return bucket


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
