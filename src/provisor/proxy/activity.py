"""The proxy's activity: every call of a proxy system's SCIM API (time, system, operation,
entity, status, duration, request id), kept in memory as it happens and written to the
database in batches by a thread of its own, so that a call pays only an append to a list.

At most ``capacity`` calls wait for the writer: beyond, calls are counted and not kept (the
log is the administrators' view of the traffic, not an audit). Old calls go with the job logs,
after the tenant's log retention (``JobService.purge``).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import structlog
from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from provisor.context import ANY_TENANT, Context, Permission, requires
from provisor.storage import tables as t
from provisor.storage.database import Database

log = structlog.get_logger("provisor.proxy.activity")

CAPACITY = 10_000  # calls waiting for the writer at most
FLUSH_SECONDS = 1.0
BATCH = 500  # calls written per statement
_table = t.proxy_activity


@dataclass(frozen=True, slots=True)
class ProxyCall:
    """One call of a proxy system's SCIM API."""

    tenant: str
    time: str
    system_id: str
    operation: str  # search, get, create, replace, patch, delete, discovery
    endpoint: str  # Users, Groups, Schemas...
    entity_id: str | None
    status: int
    duration_us: int
    request_id: str
    caller: str

    @property
    def duration_ms(self) -> float:
        return self.duration_us / 1000


class ProxyActivity:
    """Records proxy calls (:meth:`record`, cheap, any thread) and shows them
    (:meth:`search`, permission ``view``)."""

    def __init__(
        self, db: Database, *, capacity: int = CAPACITY, flush_seconds: float = FLUSH_SECONDS
    ) -> None:
        self.db = db
        self.capacity = capacity
        self.flush_seconds = flush_seconds
        self.dropped = 0  # calls not kept because the writer was behind
        self._waiting: deque[ProxyCall] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def record(self, call: ProxyCall) -> None:
        """Keep ``call`` for the writer (started with the first call)."""
        if len(self._waiting) >= self.capacity:
            self.dropped += 1
            return
        self._waiting.append(call)
        if self._writer is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._writer is None and not self._stop.is_set():
                self._writer = threading.Thread(
                    target=self._write_on, name="proxy-activity", daemon=True
                )
                self._writer.start()

    def _write_on(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self) -> int:
        """Write the calls waiting; how many were written (a failure is logged, and those
        calls are lost)."""
        written = 0
        while True:
            batch: list[ProxyCall] = []
            while len(batch) < BATCH:
                try:
                    batch.append(self._waiting.popleft())
                except IndexError:  # empty (another thread may have taken the last)
                    break
            if not batch:
                break
            try:
                self._write(batch)
            except SQLAlchemyError as exc:
                log.warning("proxy activity not written", calls=len(batch), error=str(exc))
                continue
            written += len(batch)
        if self.dropped:
            log.warning("proxy activity dropped: the writer was behind", calls=self.dropped)
            self.dropped = 0
        return written

    def _write(self, batch: list[ProxyCall]) -> None:
        rows = [
            {
                "tenant": c.tenant,
                "time": c.time,
                "system_id": c.system_id,
                "operation": c.operation,
                "endpoint": c.endpoint[:32],
                "entity_id": c.entity_id[:512] if c.entity_id else None,
                "status": c.status,
                "duration_us": c.duration_us,
                "request_id": c.request_id[:64],
                "caller": c.caller[:255],
            }
            for c in batch
        ]
        with self.db.write(Context.system("proxy", tenant=ANY_TENANT)) as tx:
            tx.execute(insert(_table), rows)

    def close(self) -> None:
        """Stop the writer and write what waits."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
        self.flush()

    @requires(Permission.VIEW)
    def search(
        self,
        ctx: Context,
        *,
        system_id: str | None = None,
        entity_id: str | None = None,
        failed: bool | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[ProxyCall], bool]:
        """Calls newest first, of a proxy system, of an entity id, failed (status 400 or
        more) or not; and whether more follow (not how many: the log may be long)."""
        c = _table.c
        where = []
        if system_id is not None:
            where.append(c.system_id == system_id)
        if entity_id is not None:
            where.append(c.entity_id == entity_id)
        if failed is not None:
            where.append(c.status >= 400 if failed else c.status < 400)
        with self.db.read(ctx) as tx:
            query = tx.scoped(select(_table).where(*where), _table)
            rows = tx.execute(
                query.order_by(c.time.desc(), c.id.desc()).offset(offset).limit(limit + 1)
            ).all()
        calls = [
            ProxyCall(
                tenant=r.tenant,
                time=r.time,
                system_id=r.system_id,
                operation=r.operation,
                endpoint=r.endpoint,
                entity_id=r.entity_id,
                status=r.status,
                duration_us=r.duration_us,
                request_id=r.request_id,
                caller=r.caller,
            )
            for r in rows[:limit]
        ]
        return calls, len(rows) > limit
