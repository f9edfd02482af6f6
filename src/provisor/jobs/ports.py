"""What the job engine needs from storage, as protocols (the SQL lives in provisor.storage)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from provisor.jobs.loops import Echo
from provisor.jobs.model import Counts, JobStatus


@dataclass(frozen=True, slots=True)
class Record:
    """Operational data of one entity of a source in one target (spec §3.2)."""

    source_entity_id: str
    target_entity_id: str
    hash: str
    existed_before: bool = False
    source_hash: str | None = None  # of the source entity and the configuration, when written


@dataclass(frozen=True, slots=True)
class Settled:
    """What a page did in one target: records written and source ids seen by a job chain,
    and the source ids whose write intents it settles."""

    source_id: str
    target_id: str
    entity_type: str
    saved: Sequence[Record]
    seen: Sequence[str]
    seen_by: str
    intents: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class SourceState:
    delta_token: str | None = None
    deltas_since_full: int = 0
    last_full_count: int | None = None


@dataclass(frozen=True, slots=True)
class EntityLog:
    action: str  # failed, skipped, created, updated, deleted
    entity_type: str
    system_id: str
    system_name: str
    entity_id: str
    reason: str | None = None
    content: str | None = None


class OperationalData(Protocol):
    def records(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]
    ) -> dict[str, Record]: ...

    def settle(self, pages: Sequence[Settled]) -> None:
        """Records written and seen by several pages, and their intents removed, in one
        transaction."""

    def intend(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str], job_id: str
    ) -> set[str]:
        """Record that these source entities are about to be created in the target (durably,
        before the writes); the ids an earlier run recorded and never settled: a write it may
        have done."""

    def unseen(
        self, source_id: str, target_id: str, entity_type: str, seen_by: str, batch: int
    ) -> Iterator[list[Record]]:
        """Records not seen by ``seen_by``, in batches (the deletion candidates)."""

    def count_unseen(
        self, source_id: str, target_id: str, entity_type: str, seen_by: str
    ) -> tuple[int, int]:
        """(candidates, of which existed before)."""

    def remove(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]
    ) -> None: ...

    def resolve(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]
    ) -> dict[str, str]:
        """Source entity id -> target entity id, for the ids provisioned."""

    def save_echoes(self, endpoint: str, entity_type: str, echoes: Sequence[Echo]) -> None: ...

    def echo(self, endpoint: str, entity_type: str, entity_id: str) -> Echo | None: ...

    def source_state(self, source_id: str, entity_type: str) -> SourceState: ...

    def save_source_state(self, source_id: str, entity_type: str, state: SourceState) -> None: ...


class LockHolder(Protocol):
    """Entity locks held together (storage/locks.py), taken without waiting."""

    def take(self, keys: Sequence[int]) -> set[int]:
        """Those of ``keys`` now held; the others are held by someone else."""

    def release(self) -> None:
        """Every key held, released."""


class EntityLocks(Protocol):
    def holder(self) -> LockHolder: ...


class JobJournal(Protocol):
    """Where a running job reports: its row, statistics and entity logs."""

    def update(self, job_id: str, **fields: Any) -> None: ...

    def stop_requested(self, job_id: str) -> bool: ...

    def save_statistics(
        self, job_id: str, counts: Mapping[tuple[str, str, str, str], Counts]
    ) -> None:
        """counts by (entity type, system id, system name, role)."""

    def add_entity_logs(self, job_id: str, entries: Sequence[EntityLog]) -> None: ...

    def set_status(self, job_id: str, status: JobStatus, **fields: Any) -> None: ...
