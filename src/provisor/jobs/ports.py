"""What the job engine needs from storage, as protocols (the SQL lives in provisor.storage)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from provisor.jobs.loops import Echo
from provisor.jobs.model import Counts, Job, JobStatus
from provisor.storage.database import Transaction


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """Deletions a full read wanted in one target and did not do, because the read was empty
    or the deletions exceeded ``ips.delete.threshold.*``: held on every run until an
    administrator confirms them (spec §3.5 rule 5, and provisor's empty-read guard)."""

    source_id: str
    target_id: str
    entity_type: str
    reason: str  # EMPTY or THRESHOLD
    count: int  # deletions held back
    read: int  # entities the full read returned
    last_full_count: int | None  # entities the last complete full read returned
    threshold: int | None
    job_id: str
    held: str
    target_name: str = ""
    confirmed_by: str | None = None
    confirmed: str | None = None

    EMPTY: ClassVar[str] = "empty"
    THRESHOLD: ClassVar[str] = "threshold"

    def covers(self, count: int) -> bool:
        """Whether this hold was confirmed for at least ``count`` deletions."""
        return self.confirmed is not None and count <= self.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "sourceSystemId": self.source_id,
            "targetSystemId": self.target_id,
            "targetSystemName": self.target_name,
            "entityType": self.entity_type,
            "reason": self.reason,
            "heldBack": self.count,
            "read": self.read,
            "lastFullCount": self.last_full_count,
            "threshold": self.threshold,
            "jobId": self.job_id,
            "held": self.held,
            "confirmedBy": self.confirmed_by,
            "confirmed": self.confirmed,
        }


@dataclass(frozen=True, slots=True)
class EntityLog:
    """What a run did to one entity in one system, as its entity log stores it."""

    action: str  # failed, skipped, created, updated, deleted
    entity_type: str
    system_id: str
    system_name: str
    entity_id: str  # in the source (what identifies it, when the source gave no usable id)
    reason: str | None = None
    content: str | None = None  # only when an ips.trace.*.entity.content property asks
    name: str | None = None  # userName / displayName
    target_entity_id: str | None = None  # its id in the target


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

    def hold(self, hold: Hold) -> Hold | None:
        """Hold deletions back, unless a confirmation covers them. In one transaction: the
        confirmed hold on record for the same target and entity type, if any; when it covers
        ``hold.count`` it is spent (removed) and the deletions may go ahead, otherwise
        ``hold`` replaces it."""

    def release(self, source_id: str, target_id: str, entity_type: str) -> None:
        """Forget a hold: nothing is held back there any more."""

    def holds(self, source_id: str) -> list[Hold]: ...

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

    def commit(
        self,
        job_id: str,
        entries: Sequence[EntityLog],
        counts: Mapping[tuple[str, str, str, str], Counts],
        **fields: Any,
    ) -> None:
        """A page's entity logs, the statistics so far (by entity type, system id, system name,
        role) and the row's ``fields``, in one transaction."""

    def commit_increments(
        self,
        job_id: str,
        entries: Sequence[EntityLog],
        counts: Mapping[tuple[str, str, str, str], Counts],
        **fields: Any,
    ) -> None:
        """As ``commit``, the statistics since the last commit added to those committed."""

    def set_status(self, job_id: str, status: JobStatus, **fields: Any) -> None: ...


class JobEvents(Protocol):
    """Who is told when a job's status changes (the notifications, wired by the composition
    root): called in the transaction that records the change, so what it writes (an outbox
    row) commits with it."""

    def job_changed(self, tx: Transaction, job: Job, before: JobStatus) -> None:
        """``job`` (as just written, with its statistics) went from ``before`` to its
        status."""
