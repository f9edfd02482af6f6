"""SQL of real-time logs: add, get, search (old ones go with the job logs: JobService.purge)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, insert, or_, select

from provisor.realtime.model import Operation, RealtimeLog, Status, SystemResult
from provisor.storage import tables as t
from provisor.storage.database import Transaction
from provisor.types import EntityType

_logs = t.realtime_logs


def add(tx: Transaction, log: RealtimeLog) -> None:
    tx.execute(
        insert(_logs).values(
            tx.tenant_values(
                _logs,
                {
                    "id": log.id,
                    "source_id": log.source_id,
                    "source_name": log.source_name,
                    "entity_type": log.entity_type.value,
                    "entity_id": log.entity_id,
                    "entity_name": log.entity_name,
                    "operation": log.operation.value,
                    "status": log.status.value,
                    "started": log.started,
                    "duration_ms": log.duration_ms,
                    "error": log.error,
                    "caller": log.caller,
                    "systems": orjson.dumps([s.to_dict() for s in log.systems]).decode(),
                },
            )
        )
    )


def get(tx: Transaction, log_id: str) -> RealtimeLog | None:
    row = tx.execute(tx.scoped(select(_logs).where(_logs.c.id == log_id), _logs)).first()
    return None if row is None else _log(row)


def search(
    tx: Transaction,
    *,
    source_id: str | None = None,
    entity_id: str | None = None,
    entity: str | None = None,
    entity_type: str | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[RealtimeLog], int]:
    """Newest first, by source, entity id, entity (id or name), entity type and status."""
    where = []
    if entity is not None:
        where.append(or_(_logs.c.entity_id == entity, _logs.c.entity_name == entity))
    for column, value in (
        (_logs.c.source_id, source_id),
        (_logs.c.entity_id, entity_id),
        (_logs.c.entity_type, entity_type),
        (_logs.c.status, status),
    ):
        if value is not None:
            where.append(column == value)
    counted = tx.scoped(select(func.count()).select_from(_logs).where(*where), _logs)
    total = tx.execute(counted).scalar()
    newest = tx.scoped(select(_logs).where(*where), _logs).order_by(
        _logs.c.started.desc(), _logs.c.id
    )
    rows = tx.execute(newest.offset(offset).limit(limit)).all()
    return [_log(r) for r in rows], int(total or 0)


def _log(row: Any) -> RealtimeLog:
    return RealtimeLog(
        id=row.id,
        source_id=row.source_id,
        source_name=row.source_name,
        entity_type=EntityType(row.entity_type),
        entity_id=row.entity_id,
        operation=Operation(row.operation),
        status=Status(row.status),
        started=row.started,
        duration_ms=row.duration_ms,
        error=row.error,
        caller=row.caller,
        systems=[SystemResult.from_dict(s) for s in orjson.loads(row.systems)],
        entity_name=row.entity_name,
    )
