"""One run of the pipeline: what it is asked to do (a :class:`RunSpec`, immutable), what it
accumulates (a :class:`Ledger`: statistics, entity logs, per-target failures, outcome, the
operational data waiting to be stored) and the :class:`Run` the pipeline's stages (writing,
deleting, coverage) share: the specification, the ledger and the ports they report to.

A job's run and a real-time push are both runs: the job reads pages of its source, a push
one entity (``jobs/pipeline.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from provisor.jobs.locking import LOCK_SECONDS, entity_key, holding
from provisor.jobs.model import Action, Counts, JobType, Logged, Trigger
from provisor.jobs.plan import Participant, TypeRun, log_text
from provisor.jobs.ports import EntityLocks, EntityLog, OperationalData, Settled

HIDDEN = "<hidden content>"

StatisticsKey = tuple[str, str, str, str]
"""(entity type, system id, system name, role) of a statistics row."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """What one run does: its source and targets, how it reads and writes, under which id.

    ``run_id`` is the job's id (write intents and held deletions name it); ``seen_by`` marks
    the records a run sees (the job chain's id: its deletions keep them). ``type`` says how
    to write (READ: what changed, RESYNC: everything, SIMULATE: nothing), ``trigger`` how it
    was started (a scheduled run counts toward ``ips.full.read.force.count``)."""

    run_id: str
    seen_by: str
    type: JobType
    trigger: Trigger
    source: Participant
    targets: tuple[Participant, ...]
    trace: bool = False  # log every entity with the steps of its transformations
    systems_by_name: Mapping[str, str] = field(default_factory=dict)  # resolveEntityIds
    resume_from: Mapping[str, int] = field(default_factory=dict)  # entities done, by type
    settle_together: bool = False  # every target's operational data in one transaction

    @property
    def simulate(self) -> bool:
        return self.type is JobType.SIMULATE

    @property
    def resync(self) -> bool:
        return self.type is JobType.RESYNC

    def role_of(self, system: Participant) -> str:
        return "source" if system is self.source else "target"


@dataclass(slots=True)
class Ledger:
    """What a run accumulates."""

    counts: dict[StatisticsKey, Counts] = field(default_factory=lambda: defaultdict(Counts))
    logs: list[EntityLog] = field(default_factory=list)  # not yet committed
    outcome: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fatal: dict[str, str] = field(default_factory=dict)  # target id -> why writing it stopped
    discovered: dict[str, str] = field(default_factory=dict)  # target id -> what it declares
    source_failed: bool = False  # a read failure: no deletions
    stopped: bool = False
    checkpoint: dict[str, int] = field(default_factory=dict)  # entities done, by type
    runs: dict[str, TypeRun] = field(default_factory=dict)  # the reads, by entity type
    # SIMULATE marks nothing seen in operational data: (target, type) -> source ids seen
    simulated_seen: dict[tuple[str, str], set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )
    deferred: list[Settled] = field(default_factory=list)  # settle_together: waiting
    # pages are transformed, written and committed in threads at once: logs are taken whole
    guard: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        """Whether some entity failed somewhere."""
        return any(c.failed for c in self.counts.values())

    def take_logs(self) -> list[EntityLog]:
        """The entity logs not committed yet (and forget them)."""
        with self.guard:
            logs, self.logs = self.logs, []
        return logs

    def action_of(self, system_id: str, entity_type: str) -> Action:
        """What happened to a run's entities in a system, the most telling first (failed,
        skipped, created, updated, deleted, unchanged; else read)."""
        counts = [
            c for key, c in self.counts.items() if key[1] == system_id and key[0] == entity_type
        ]
        for candidate in (
            Action.FAILED,
            Action.SKIPPED,
            Action.CREATED,
            Action.UPDATED,
            Action.DELETED,
            Action.UNCHANGED,
        ):
            if any(getattr(c, candidate.value) for c in counts):
                return candidate
        return Action.READ

    def reason_of(self, system_id: str) -> str | None:
        """The first reason an entity log of a system gives."""
        reasons = (log.reason for log in self.logs if log.system_id == system_id and log.reason)
        return next(reasons, None)


class Run:
    """A run at work: its specification, its ledger, and the ports its stages use."""

    def __init__(
        self,
        spec: RunSpec,
        opdata: OperationalData,
        *,
        ledger: Ledger | None = None,
        locks: EntityLocks | None = None,
        lock_seconds: float = LOCK_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.spec = spec
        self.ledger = ledger if ledger is not None else Ledger(checkpoint=dict(spec.resume_from))
        self.opdata = opdata
        self.locks = locks
        self.lock_seconds = lock_seconds
        self.sleep = sleep
        source = spec.source
        self._with_content = {
            action.value: source.flag(f"ips.trace.{action}.entity.content") for action in Logged
        }

    @property
    def source(self) -> Participant:
        return self.spec.source

    @property
    def targets(self) -> tuple[Participant, ...]:
        return self.spec.targets

    @property
    def simulate(self) -> bool:
        return self.spec.simulate

    # -- what happened ---------------------------------------------------------------------------

    def fatal(self, target: Participant) -> str | None:
        """Why the run stopped writing to a target (None: it writes)."""
        return self.ledger.fatal.get(target.id)

    def fail_target(self, target: Participant, reason: str) -> None:
        """Stop writing to a target (its first failure is the one reported)."""
        if target.id not in self.ledger.fatal:
            self.ledger.fatal[target.id] = reason
            self.ledger.errors.append(f"Target {target.name}: {reason}")

    def count(self, entity_type: str, system: Participant, action: Action) -> None:
        key = (entity_type, system.id, system.name, self.spec.role_of(system))
        self.ledger.counts[key].add(action)

    def log(
        self,
        action: Action,
        entity_type: str,
        system: Participant,
        entity_id: str,
        reason: str | None,
        content: Any,
        trace: Any = None,
        *,
        name: str | None = None,
        target_id: str | None = None,
    ) -> None:
        """An entity log: every entity failed, skipped, created, updated or deleted, with its
        ``name`` and ids; its ``content`` only when the source's
        ``ips.trace.<action>.entity.content`` property asks (else a failed or skipped one
        says ``<hidden content>``); the ``trace`` of its transformations in a traced run."""
        with_content = self._with_content.get(action.value, False)
        text = None
        if trace is not None:
            text = log_text({"trace": trace, **({"document": content} if with_content else {})})
        elif with_content and content is not None:
            text = log_text(content)
        elif action in (Action.FAILED, Action.SKIPPED) and content is not None:
            text = HIDDEN
        entry = EntityLog(
            action.value,
            entity_type,
            system.id,
            system.name,
            entity_id,
            reason,
            text,
            name=name,
            target_entity_id=target_id,
        )
        with self.ledger.guard:
            self.ledger.logs.append(entry)

    # -- storing ----------------------------------------------------------------------------------

    def settle(self, page: Settled) -> None:
        """Store what a page did in a target (or keep it for one transaction with the others)."""
        if self.spec.settle_together:
            self.ledger.deferred.append(page)
        else:
            self.opdata.settle([page])

    def holding(
        self, entity_type: str, source_ids: Iterable[str]
    ) -> AbstractAsyncContextManager[None]:
        """The locks of these source entities, held while they are written (decision 0021);
        a run without locks (SIMULATE writes nothing) holds none."""
        if self.locks is None or self.spec.simulate:
            return contextlib.nullcontext()
        keys = [entity_key(self.source.id, entity_type, i) for i in source_ids]
        return holding(self.locks, keys, self.lock_seconds)


def handling(targets: Sequence[Participant], entity_type: str) -> list[Participant]:
    """The targets that take entities of a type."""
    return [t for t in targets if t.handles(entity_type)]
