"""The tenant's budget of proxy and real-time calls (spec §3.13): past the throttle rate
(150/minute by default) each call waits a second; past the maximum (200/minute) calls get
429 with ``Retry-After``. Paths under ``/ipsproxy/`` share one budget, spent only by
callers that are authenticated and allowed (the route's guard admits them, see
:mod:`provisor.web.auth`).

The counting is pyrate-limiter's sliding window, in a bucket every server process shares:
an SQLite file in the data folder (with a file lock) on the embedded default, a table in
PostgreSQL otherwise.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrate_limiter import AbstractBucket, Duration, Rate, RateItem

from provisor.settings import RATE_LIMITS_FILE, Settings

PREFIX = "/ipsproxy/"
THROTTLE_SECONDS = 1.0
LOCK_TIMEOUT_MS = 5000  # a call refused (429) after waiting this long for the shared count
_TENANT = "tenant"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    seconds: float  # to wait before serving (throttled), or until a retry may pass (refused)


class InboundBudget:
    """The two sliding windows (throttle, maximum) over a shared store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
            item = RateItem(_TENANT, _now_ms())
            if not maximum.put(item):
                waiting = maximum.waiting(item)
                assert isinstance(waiting, int)
                return Decision(False, max(1, math.ceil(waiting / 1000)))
        if throttle is not None and not throttle.put(RateItem(_TENANT, _now_ms())):
            return Decision(True, THROTTLE_SECONDS)
        return Decision(True, 0.0)

    def _open(self) -> tuple[AbstractBucket | None, AbstractBucket | None]:
        with self._lock:  # opened in the process that serves (after the fork)
            if self._buckets is None:
                self._buckets = (
                    self._bucket("throttle", self.throttle),
                    self._bucket("maximum", self.maximum),
                )
            return self._buckets

    def _bucket(self, name: str, per_minute: int) -> AbstractBucket | None:
        if not per_minute:
            return None
        rates = [Rate(per_minute, Duration.MINUTE)]
        table = f"provisor_rate_{name}"
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
