"""Deleting after a full read (spec §3.5): what the source no longer has goes from each
target, unless a rule says otherwise (delta reads, read failures, entities that existed
before, skipped deletes); soft deletes where the transformation says so.

An empty read (where the last complete full read found entities) or more deletions than
``ips.delete.threshold.*`` holds the deletions of a target back, on every run, until an
administrator confirms them: the hold is recorded (a ``Hold``), the entities are marked
failed, and a confirmation is spent by the one run it releases."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from provisor.connectors.base import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorError,
    EntityNotFound,
)
from provisor.errors import TooManyRequestsError
from provisor.jobs import loops
from provisor.jobs.ledger import Run
from provisor.jobs.model import Action, ReadMode
from provisor.jobs.plan import Participant, TypeRun
from provisor.jobs.ports import Hold, Record
from provisor.timestamps import now
from provisor.transform import Failed, Operation, Transformed

DELETE_BATCH = 500


class Deleting:
    """The deletion phase of one job."""

    def __init__(self, run: Run, commit: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        """``commit``: called (in a thread) after each batch of deletions, to store what the
        run did so far."""
        self.run = run
        self.commit = commit

    async def delete(self, entity_type: str, read: TypeRun) -> None:
        what = f"{entity_type}s"
        if read.mode is not ReadMode.FULL:
            self.run.ledger.outcome.append(f"No {what} deleted: a delta read never deletes.")
            return
        if self.run.ledger.source_failed or not read.complete:
            self.run.ledger.outcome.append(
                f"No {what} deleted: the read from {self.run.source.name} had failures."
            )
            return
        state = await asyncio.to_thread(
            self.run.opdata.source_state, self.run.source.id, entity_type
        )
        for target in self.run.targets:
            if target.handles(entity_type):
                try:
                    await self._delete_in(target, entity_type, read, state.last_full_count)
                except TooManyRequestsError as exc:  # the next full read deletes them
                    self.run.ledger.errors.append(
                        f"Deleting {what} in {target.name} stopped: {exc.message}"
                    )

    async def _delete_in(
        self, target: Participant, entity_type: str, read: TypeRun, last_full_count: int | None
    ) -> None:
        what = f"{entity_type}s"
        fatal = self.run.fatal(target)
        if fatal is not None:
            self.run.ledger.outcome.append(
                f"No {what} deleted in {target.name}: it failed ({fatal})."
            )
            return
        total, existed = await asyncio.to_thread(self._count_unseen, target, entity_type)
        keep_existing = not target.flag("ips.delete.existedbefore.entities")
        wanted = total - existed if keep_existing else total
        if existed and keep_existing:
            self.run.ledger.outcome.append(
                f"{_many(existed, entity_type)} that existed before in {target.name} kept "
                "(ips.delete.existedbefore.entities is false)."
            )
        if wanted <= 0:
            await asyncio.to_thread(self._settle, None, target, entity_type)
            self.run.ledger.outcome.append(f"No {what} to delete in {target.name}.")
            return
        guard = self._guard(target, entity_type, read, last_full_count, wanted)
        confirmed = await asyncio.to_thread(self._settle, guard, target, entity_type)
        if guard is not None and (confirmed is None or not confirmed.covers(wanted)):
            self.run.ledger.outcome.append(self._held(guard, confirmed))
            mark = self._mark_failed(target, entity_type, f"Not deleted: {self._why(guard)}")
            await self._each_unseen(target, entity_type, keep_existing, mark)
            return
        section = target.transformation.entity(entity_type)
        skipped = section is not None and "delete" in section.skip_operations
        done = [0]

        async def remove(records: list[Record]) -> list[str]:
            gone = await self.remove(target, entity_type, records, skipped)
            done[0] += len(gone)
            return gone

        await self._each_unseen(target, entity_type, keep_existing, remove)
        verb = "would be deleted" if self.run.simulate else "deleted"
        if skipped:
            self.run.ledger.outcome.append(
                f"No {what} deleted in {target.name}: its transformation skips delete."
            )
        else:
            self.run.ledger.outcome.append(
                f"{_many(done[0], entity_type)} {verb} in {target.name}"
                + (_confirmation(confirmed) if guard is not None and confirmed else "")
                + "."
            )

    # -- holding deletions back -----------------------------------------------------------------

    def _guard(
        self,
        target: Participant,
        entity_type: str,
        read: TypeRun,
        last_full_count: int | None,
        wanted: int,
    ) -> Hold | None:
        """The hold these deletions call for: an empty read (whatever the last complete one
        found: entities a delta read added count too), or more deletions than
        ips.delete.threshold.*; None when neither."""
        active = self.run
        threshold = target.number(f"ips.delete.threshold.{entity_type}s")
        if read.read == 0 and not active.source.flag("ips.delete.after.empty.read"):
            reason = Hold.EMPTY
        elif threshold is not None and wanted > threshold:
            reason = Hold.THRESHOLD
        else:
            return None
        return Hold(
            source_id=active.source.id,
            target_id=target.id,
            entity_type=entity_type,
            reason=reason,
            count=wanted,
            read=read.read,
            last_full_count=last_full_count,
            threshold=threshold,
            job_id=active.spec.run_id,
            held=now(),
            target_name=target.name,
        )

    def _settle(self, guard: Hold | None, target: Participant, entity_type: str) -> Hold | None:
        """Record the hold (or that nothing is held any more); the confirmation on record.
        A simulation only looks."""
        active = self.run
        if active.simulate:
            found = [
                h
                for h in active.opdata.holds(active.source.id)
                if h.target_id == target.id and h.entity_type == entity_type
            ]
            return found[0] if found and found[0].confirmed is not None else None
        if guard is None:
            active.opdata.release(active.source.id, target.id, entity_type)
            return None
        return active.opdata.hold(guard)

    def _why(self, hold: Hold) -> str:
        """Why deletions are held back, and how to release them."""
        what = f"{hold.entity_type}s"
        source = self.run.source
        if hold.reason == Hold.EMPTY:
            why = f"the full read of {source.name} returned no {what}" + (
                f" where the last complete one returned {hold.last_full_count:,}"
                if hold.last_full_count
                else ""
            )
            other = f"set ips.delete.after.empty.read=true on {source.name}"
        else:
            why = (
                f"{hold.count:,} {what} to delete exceed "
                f"ips.delete.threshold.{what}={hold.threshold} (the full read returned "
                f"{hold.read:,} {what}"
                + (
                    ""
                    if hold.last_full_count is None
                    else f", the last complete one {hold.last_full_count:,}"
                )
                + ")"
            )
            other = f"raise ips.delete.threshold.{what} on {hold.target_name}"
        return (
            f"{why}. They are held back on every run until an administrator confirms them "
            f"(provisor jobs confirm-deletions {shlex.quote(source.name)}, or POST "
            f"/api/v1/systems/{source.id}/confirm-deletions) or {other}."
        )

    def _held(self, hold: Hold, confirmed: Hold | None) -> str:
        text = (
            f"{_many(hold.count, hold.entity_type)} not deleted in {hold.target_name}: "
            f"{self._why(hold)}"
        )
        if confirmed is not None:
            text += (
                f" {confirmed.confirmed_by} confirmed {confirmed.count:,} on "
                f"{confirmed.confirmed}: fewer than now, so that confirmation is void."
            )
        return text

    def _mark_failed(
        self, target: Participant, entity_type: str, reason: str
    ) -> Callable[[list[Record]], Awaitable[list[str]]]:
        async def mark(records: list[Record]) -> list[str]:
            for record in records:
                self.run.count(entity_type, target, Action.FAILED)
                self.run.log(
                    Action.FAILED,
                    entity_type,
                    target,
                    record.source_entity_id,
                    reason,
                    None,
                    target_id=record.target_entity_id,
                )
            return []

        return mark

    def _unseen(self, target: Participant, entity_type: str) -> Iterator[list[Record]]:
        """Batches of the records this job did not see in the target."""
        active = self.run
        batches = active.opdata.unseen(
            active.source.id, target.id, entity_type, active.spec.seen_by, DELETE_BATCH
        )
        if not active.simulate:
            return batches
        seen = active.ledger.simulated_seen[(target.id, entity_type)]
        return ([r for r in b if r.source_entity_id not in seen] for b in batches)

    def _count_unseen(self, target: Participant, entity_type: str) -> tuple[int, int]:
        """How many records were not seen, and how many of them existed before."""
        active = self.run
        if not active.simulate:
            chain = active.spec.seen_by
            return active.opdata.count_unseen(active.source.id, target.id, entity_type, chain)
        total = existed = 0
        for batch in self._unseen(target, entity_type):
            total += len(batch)
            existed += sum(1 for r in batch if r.existed_before)
        return total, existed

    async def _each_unseen(
        self,
        target: Participant,
        entity_type: str,
        keep_existing: bool,
        handle: Callable[[list[Record]], Awaitable[list[str]]],
    ) -> None:
        batches = self._unseen(target, entity_type)
        while True:
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                break
            records = [r for r in batch if not (r.existed_before and keep_existing)]
            ids = [r.source_entity_id for r in records]
            async with self.run.holding(entity_type, ids):  # no call writes them meanwhile
                records = await asyncio.to_thread(self._current, target, entity_type, ids)
                gone = await handle(records)
                if not self.run.simulate and gone:
                    await asyncio.to_thread(
                        self.run.opdata.remove,
                        self.run.source.id,
                        target.id,
                        entity_type,
                        gone,
                    )
            if self.commit is not None:
                await asyncio.to_thread(self.commit, {"heartbeat": now()})

    def _current(self, target: Participant, entity_type: str, ids: list[str]) -> list[Record]:
        """The records of these ids as they are now (a real-time call may have written or
        deleted the entity since the batch was read)."""
        records = self.run.opdata.records(self.run.source.id, target.id, entity_type, ids)
        return [records[i] for i in ids if i in records]

    async def remove(
        self, target: Participant, entity_type: str, records: list[Record], skipped: bool
    ) -> list[str]:
        """Delete (or soft-delete) records' entities in a target; the source ids gone."""
        gone: list[str] = []
        limit = asyncio.Semaphore(target.number("ips.write.concurrency") or 8)
        # deleteEntity mappings turn a delete into an update; where the type has the switch
        # (Identity Authentication, Local Identity Directory), only when it is on.
        switch = f"{target.prefix}.user.update.instead.delete"
        soft_allowed = target.flag(switch) if switch in target.properties else True

        async def one(record: Record) -> None:
            async with limit:
                if skipped:
                    self.run.count(entity_type, target, Action.SKIPPED)
                    self.run.log(
                        Action.SKIPPED,
                        entity_type,
                        target,
                        record.source_entity_id,
                        "Operation [delete] is skipped in target transformation",
                        None,
                        target_id=record.target_entity_id,
                    )
                    return
                outcome = target.transformation.apply(
                    entity_type,
                    {},
                    operation=Operation.DELETE,
                    variables={
                        "entityIdSourceSystem": record.source_entity_id,
                        "entityIdTargetSystem": record.target_entity_id,
                    },
                )
                if isinstance(outcome, Failed):
                    self.run.count(entity_type, target, Action.FAILED)
                    self.run.log(
                        Action.FAILED,
                        entity_type,
                        target,
                        record.source_entity_id,
                        outcome.reason,
                        None,
                        target_id=record.target_entity_id,
                    )
                    return
                soft = isinstance(outcome, Transformed) and soft_allowed
                if self.run.simulate:
                    gone.append(record.source_entity_id)
                    self.run.count(entity_type, target, Action.DELETED)
                    self.run.log(
                        Action.DELETED,
                        entity_type,
                        target,
                        record.source_entity_id,
                        "soft delete (update)" if soft else None,
                        None,
                        target_id=record.target_entity_id,
                    )
                    return
                try:
                    if soft:
                        assert isinstance(outcome, Transformed)
                        document = outcome.document
                        await target.retry.call(
                            lambda: target.connector.update(
                                entity_type, record.target_entity_id, document
                            ),
                            sleep=self.run.sleep,
                        )
                    else:
                        await target.retry.call(
                            lambda: target.connector.delete(entity_type, record.target_entity_id),
                            sleep=self.run.sleep,
                        )
                except EntityNotFound:
                    pass  # already gone
                except (AuthenticationFailed, ConnectionFailed) as exc:
                    self.run.fail_target(target, exc.message)
                    self.run.count(entity_type, target, Action.FAILED)
                    return
                except ConnectorError as exc:
                    self.run.count(entity_type, target, Action.FAILED)
                    self.run.log(
                        Action.FAILED,
                        entity_type,
                        target,
                        record.source_entity_id,
                        exc.message,
                        None,
                        target_id=record.target_entity_id,
                    )
                    return
                gone.append(record.source_entity_id)
                if target.echo is not None:
                    echo = loops.deleted(record.target_entity_id)
                    await asyncio.to_thread(
                        self.run.opdata.save_echoes, target.echo, entity_type, [echo]
                    )
                self.run.count(entity_type, target, Action.DELETED)
                self.run.log(
                    Action.DELETED,
                    entity_type,
                    target,
                    record.source_entity_id,
                    "soft delete (update)" if soft else None,
                    None,
                    target_id=record.target_entity_id,
                )

        await asyncio.gather(*(one(r) for r in records if self.run.fatal(target) is None))
        return gone


def _confirmation(hold: Hold) -> str:
    return (
        f", as {hold.confirmed_by} confirmed on {hold.confirmed} (held back by job {hold.job_id})"
    )


def _many(count: int, entity_type: str) -> str:
    return f"{count:,} {entity_type}{'' if count == 1 else 's'}"
