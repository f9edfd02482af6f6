"""Writing a page of items to a target (spec §3.1, §3.2): plan each item's operation from
operational data, record the creates as write intents (reconciling those a crashed run left),
write with bounded concurrency (Bulk where the target has it), resolve conflicts, then count,
log and store what was done, the intents settled with it (decision 0012)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from provisor import tracing
from provisor.connectors.base import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorError,
    EntityConflict,
    EntityNotFound,
    Written,
)
from provisor.errors import ConfigError
from provisor.jobs import loops
from provisor.jobs.coverage import Coverage
from provisor.jobs.diff import attribute_diff
from provisor.jobs.ledger import Run
from provisor.jobs.model import Action
from provisor.jobs.plan import Item, Participant, Plan, digest, log_text, name_of
from provisor.jobs.ports import Record, Settled
from provisor.transform import Failed, Ignored, Operation, Skipped, Transformed
from provisor.transform.jsonpath import MISSING, Env, compile_reader
from provisor.types import EntityType


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A page planned for a target, not sent yet."""

    target: Participant
    entity_type: str
    plans: list[Plan]
    resolver: Resolver


class Writing:
    """The writes of one job, a page and a target at a time."""

    def __init__(self, run: Run, coverage: Coverage) -> None:
        self.run = run
        self.coverage = coverage

    async def write_page(
        self, target: Participant, entity_type: str, items: list[Item]
    ) -> list[Plan]:
        """Write items to a target; what was done with each."""
        return await self.finish(await self.prepare(target, entity_type, items))

    async def prepare(self, target: Participant, entity_type: str, items: list[Item]) -> Prepared:
        """The first half of a page's write: each item's operation planned from operational
        data, nothing sent (a flow plans a page while the one before is being written)."""
        resolver = Resolver(self.run, target)
        await self.coverage.prepare(target)
        plans = await asyncio.to_thread(self._plan, target, entity_type, items, resolver)
        return Prepared(target, entity_type, plans, resolver)

    async def finish(self, prepared: Prepared) -> list[Plan]:
        """The second half: the planned writes sent, then counted, logged and stored."""
        target, entity_type, plans = prepared.target, prepared.entity_type, prepared.plans
        with tracing.span(
            "target write",
            target=target.name,
            target_id=target.id,
            entity_type=entity_type,
            items=len(plans),
        ):
            return await self._write_page(target, entity_type, plans, prepared.resolver)

    async def _write_page(
        self, target: Participant, entity_type: str, plans: list[Plan], resolver: Resolver
    ) -> list[Plan]:
        concurrency = target.number("ips.write.concurrency") or 8
        limit = asyncio.Semaphore(concurrency)

        async def execute(plan: Plan) -> None:
            async with limit:
                if self.run.fatal(target) is None:
                    await self._execute(target, entity_type, plan)
                elif plan.action in (Action.CREATED, Action.UPDATED):
                    plan.unsent = True

        creates = [p for p in plans if p.action is Action.CREATED]
        others = [p for p in plans if p.action is not Action.CREATED]
        if not self.run.simulate:
            creates = await self._intend(target, entity_type, creates)
        capabilities = target.connector.capabilities
        if len(creates) > 1 and capabilities.bulk and not self.run.simulate:
            size = bulk_chunk(len(creates), capabilities.bulk_size, concurrency)

            async def create_many(chunk: list[Plan]) -> None:
                async with limit:
                    if self.run.fatal(target) is None:
                        await self._create_many(target, entity_type, chunk)

            chunks = [creates[i : i + size] for i in range(0, len(creates), size)]
            await asyncio.gather(*(create_many(chunk) for chunk in chunks))
            creates = [p for p in creates if p.action is Action.CREATED and p.hash is None]
        await asyncio.gather(*(execute(p) for p in creates + others))
        if not self.run.simulate:
            await self._flush(target, plans)
        await asyncio.to_thread(self._settle, target, entity_type, plans, resolver)
        return plans

    async def _intend(
        self, target: Participant, entity_type: str, creates: list[Plan]
    ) -> list[Plan]:
        """Record the creates before they are sent (exactly once, even in a crash): those an
        earlier run recorded and never settled are looked for in the target first, and only
        the ones not there are left to create."""
        if not creates:
            return creates
        run = self.run
        pending = await asyncio.to_thread(
            run.opdata.intend,
            run.source.id,
            target.id,
            entity_type,
            [p.item.source_id for p in creates],
            run.spec.run_id,
        )
        left = []
        for plan in creates:
            plan.intended = True
            if plan.item.source_id in pending and run.fatal(target) is None:
                if await self._reconcile(target, entity_type, plan):
                    continue
            left.append(plan)
        return left

    async def _reconcile(self, target: Participant, entity_type: str, plan: Plan) -> bool:
        """Whether a create an earlier run may have sent is settled here: the entity found in
        the target (by the id the transformation chose, else by the unique attributes) is
        updated and recorded as created by provisor; False: not there, create it."""
        connector = target.connector
        document = plan.document or {}
        try:
            existing = None
            if plan.entity_id:
                found = await target.retry.call(
                    functools.partial(connector.get, entity_type, plan.entity_id),
                    sleep=self.run.sleep,
                )
                existing = None if found is None else plan.entity_id
            if existing is None:
                existing = await self._find_existing(target, entity_type, document)
            if existing is None:
                return False
            written = await target.retry.call(
                functools.partial(connector.update, entity_type, existing, document),
                sleep=self.run.sleep,
            )
        except (AuthenticationFailed, ConnectionFailed, ConfigError) as exc:
            self.run.fail_target(target, str(exc))
            failed(plan, exc)
            return True
        except ConnectorError as exc:
            failed(plan, exc)
            return True
        plan.entity_id, plan.written = written.id, written.entity
        plan.record = Record(plan.item.source_id, written.id, "", existed_before=False)
        return True

    async def _flush(self, target: Participant, plans: list[Plan]) -> None:
        """Make the page's writes durable before their records are: a target that holds
        writes back (CSV) and fails to write them has its page's writes counted failed."""
        try:
            await target.connector.flush()
        except ConnectorError as exc:
            self.run.fail_target(target, f"Writing the changes failed: {exc.message}")
            for plan in plans:
                if plan.action in (Action.CREATED, Action.UPDATED):
                    failed(plan, exc)

    def _plan(
        self,
        target: Participant,
        entity_type: str,
        items: list[Item],
        resolver: Resolver,
    ) -> list[Plan]:
        """Each item's operation in the target, from its operational data."""
        run = self.run
        records = run.opdata.records(
            run.source.id, target.id, entity_type, [i.source_id for i in items]
        )
        plans = []
        configuration = (
            run.source.fingerprint + target.fingerprint + run.ledger.discovered.get(target.id, "")
        )
        todo = []
        for item in items:
            record = records.get(item.source_id)
            source_hash = hashlib.sha256((item.raw_hash + configuration).encode()).hexdigest()
            if (
                record is not None and record.source_hash == source_hash and not run.spec.resync
            ):  # read as written last time, configured alike: nothing to do
                plans.append(Plan(item, Action.UNCHANGED, record=record, source_hash=source_hash))
            else:
                todo.append((item, record, source_hash))
        resolver.prefetch(item.document for item, _, _ in todo)
        for item, record, source_hash in todo:
            target_id = None if record is None else record.target_entity_id
            operation = Operation.UPDATE if record is not None else Operation.CREATE
            outcome = target.transformation.apply(
                entity_type,
                item.document,
                operation=operation,
                variables=_variables(item, target_id),
                resolver=resolver,
                trace=run.spec.trace,
            )
            plan = Plan(item, Action.UNCHANGED, record=record, source_hash=source_hash)
            if run.spec.trace and not isinstance(outcome, Ignored):
                plan.trace = [s.to_dict() for s in getattr(outcome, "trace", ())]
            if isinstance(outcome, Skipped):
                plan.action, plan.reason = Action.SKIPPED, outcome.reason
                plan.seen = outcome.operation is not None  # a condition skip: deleted later
            elif isinstance(outcome, Failed):
                plan.action, plan.reason = Action.FAILED, outcome.reason
            elif isinstance(outcome, Ignored):
                continue
            elif isinstance(outcome, Transformed):
                plan.document = outcome.document
                self.coverage.fit(target, entity_type, plan)
                if record is None:
                    plan.action = Action.CREATED
                    chosen = outcome.variables.get("entityIdTargetSystem")
                    plan.entity_id = None if chosen is None else str(chosen)
                else:
                    plan.hash = digest(outcome.document)
                    changed = plan.hash != record.hash
                    if changed or run.spec.resync:
                        plan.action = Action.UPDATED
            plans.append(plan)
        return plans

    async def _execute(self, target: Participant, entity_type: str, plan: Plan) -> None:
        connector = target.connector
        try:
            if plan.action is Action.CREATED:
                if self.run.simulate:
                    plan.reason = _simulated(attribute_diff({}, plan.document), plan)
                    return
                assert plan.document is not None
                document = plan.document
                written = await target.retry.call(
                    lambda: connector.create(entity_type, document, entity_id=plan.entity_id),
                    sleep=self.run.sleep,
                )
                plan.entity_id, plan.written = written.id, written.entity
            elif plan.action is Action.UPDATED:
                assert plan.document is not None and plan.record is not None
                if self.run.simulate:
                    await self._simulate_update(target, entity_type, plan)
                    return
                target_id, document = plan.record.target_entity_id, plan.document
                written = await target.retry.call(
                    lambda: connector.update(entity_type, target_id, document),
                    sleep=self.run.sleep,
                )
                plan.entity_id, plan.written = written.id, written.entity
        except EntityConflict as exc:
            await self._resolve_conflict(target, entity_type, plan, exc)
        except EntityNotFound as exc:
            if plan.action is Action.UPDATED:  # gone from the target: create it again
                plan.record, plan.action = None, Action.CREATED
                await self._recreate(target, entity_type, plan, exc)
            else:
                failed(plan, exc)
        except (AuthenticationFailed, ConnectionFailed, ConfigError) as exc:
            self.run.fail_target(target, str(exc))
            failed(plan, exc)
        except ConnectorError as exc:
            failed(plan, exc)

    async def _recreate(
        self, target: Participant, entity_type: str, plan: Plan, cause: ConnectorError
    ) -> None:
        try:
            outcome = await asyncio.to_thread(
                target.transformation.apply,
                entity_type,
                plan.item.document,
                operation=Operation.CREATE,
                variables=_variables(plan.item, None),
                resolver=Resolver(self.run, target),
            )
            if not isinstance(outcome, Transformed):
                failed(plan, cause)
                return
            plan.document = target.connector.fit(entity_type, outcome.document).entity
            document, chosen = plan.document, outcome.variables.get("entityIdTargetSystem")
            entity_id = None if chosen is None else str(chosen)
            written = await target.retry.call(
                lambda: target.connector.create(entity_type, document, entity_id=entity_id),
                sleep=self.run.sleep,
            )
            plan.entity_id, plan.written = written.id, written.entity
        except ConnectorError as exc:
            failed(plan, exc)

    async def _create_many(self, target: Participant, entity_type: str, plans: list[Plan]) -> None:
        documents = [p.document or {} for p in plans]
        try:
            results = await target.retry.call(
                lambda: target.connector.create_many(entity_type, documents),
                sleep=self.run.sleep,
            )
        except (AuthenticationFailed, ConnectionFailed, ConfigError) as exc:
            self.run.fail_target(target, str(exc))
            for plan in plans:
                failed(plan, exc)
            return
        except ConnectorError:
            return  # each one alone, below
        for plan, result in zip(plans, results, strict=True):
            if isinstance(result, Written):
                plan.entity_id, plan.written = result.id, result.entity
                plan.hash = ""  # written: hashed in _settle
            elif isinstance(result, EntityConflict):
                await self._resolve_conflict(target, entity_type, plan, result)
                plan.hash = plan.hash or ""
            else:
                failed(plan, result)
                plan.hash = ""

    async def _resolve_conflict(
        self, target: Participant, entity_type: str, plan: Plan, conflict: ConnectorError
    ) -> None:
        """A create hit an existing entity: find it by the unique attributes and update it
        (it then counts as "existed before"), spec §2.4."""
        connector = target.connector
        if plan.action is not Action.CREATED or not target.flag(
            f"{target.prefix}.user.automatic.conflict.resolution", True
        ):
            failed(plan, conflict)
            return
        document = plan.document or {}
        try:
            existing = await self._find_existing(target, entity_type, document)
            if existing is None:
                failed(plan, conflict)
                return
            written = await target.retry.call(
                functools.partial(connector.update, entity_type, existing, document),
                sleep=self.run.sleep,
            )
        except ConnectorError as exc:
            failed(plan, exc)
            return
        plan.entity_id, plan.written = written.id, written.entity
        plan.record = Record(plan.item.source_id, written.id, "", existed_before=True)

    async def _find_existing(
        self, target: Participant, entity_type: str, document: Mapping[str, Any]
    ) -> str | None:
        """The id of the one entity of the target holding a unique attribute's value of
        ``document`` (the first attribute that finds exactly one), or None."""
        connector = target.connector
        for attribute in connector.unique_attributes(entity_type):
            value = _value_at(document, attribute)
            if value is None:
                continue
            found = await target.retry.call(
                functools.partial(connector.find, entity_type, attribute, value),
                sleep=self.run.sleep,
            )
            ids = [i for i in (connector.entity_id(entity_type, e) for e in found) if i]
            if len(ids) == 1:
                return ids[0]
        return None

    async def _simulate_update(self, target: Participant, entity_type: str, plan: Plan) -> None:
        assert plan.record is not None and plan.document is not None
        try:
            current = await target.connector.get(entity_type, plan.record.target_entity_id)
        except ConnectorError:
            current = None
        sent = plan.document
        before = {k: current.get(k) for k in sent} if isinstance(current, dict) else {}
        plan.reason = _simulated(attribute_diff(before, sent), plan)

    def _settle(
        self, target: Participant, entity_type: str, plans: list[Plan], resolver: Resolver
    ) -> None:
        """Count, log and store what a page did in one target."""
        saved: list[Record] = []
        seen: list[str] = []
        for plan in plans:
            if plan.unsent:  # as the pages after it: neither counted, logged nor recorded
                continue
            action = plan.action
            self.run.count(entity_type, target, action)
            if action in (Action.CREATED, Action.UPDATED) and not self.run.simulate:
                target_id = plan.entity_id or (
                    plan.record.target_entity_id if plan.record else None
                )
                if target_id is not None:
                    existed = plan.record.existed_before if plan.record else False
                    if action is Action.CREATED and plan.record is None:
                        existed = False
                    written = _written_hash(target, entity_type, plan, target_id, resolver)
                    saved.append(
                        Record(plan.item.source_id, target_id, written, existed, plan.source_hash)
                    )
            elif (
                action is Action.UNCHANGED
                and plan.record is not None
                and plan.record.source_hash != plan.source_hash
                and not self.run.simulate
            ):  # the same written, from a source entity read differently: remember it
                saved.append(dataclasses.replace(plan.record, source_hash=plan.source_hash))
            elif plan.seen:
                seen.append(plan.item.source_id)
            if action is not Action.UNCHANGED:
                self.run.log(
                    action,
                    entity_type,
                    target,
                    plan.item.source_id,
                    plan.reason,
                    plan.document,
                    plan.trace,
                    name=name_of(plan.item.document, plan.item.raw),
                    target_id=plan.entity_id
                    or (plan.record.target_entity_id if plan.record else None),
                )
        if target.echo is not None and not self.run.simulate:
            self._save_echoes(target, entity_type, plans)
        if self.run.simulate:  # operational data stays as it is: remember in memory
            self.run.ledger.simulated_seen[(target.id, entity_type)].update(seen)
        else:
            chain = self.run.spec.seen_by
            # A target that failed keeps its intents: its writes may land later (aclose).
            done = [] if self.run.fatal(target) else [p.item.source_id for p in plans if p.intended]
            page = Settled(self.run.source.id, target.id, entity_type, saved, seen, chain, done)
            self.run.settle(page)

    def _save_echoes(self, target: Participant, entity_type: str, plans: list[Plan]) -> None:
        """What was written into a back-end that is also a source (loop prevention)."""
        assert target.echo is not None
        echoes = [
            loops.written(p.entity_id, p.written, p.document)
            for p in plans
            if p.action in (Action.CREATED, Action.UPDATED) and p.entity_id
        ]
        self.run.opdata.save_echoes(target.echo, entity_type, echoes)


def bulk_chunk(creates: int, most: int, concurrency: int) -> int:
    """How many creates a Bulk request of a page takes: at most ``most`` (0: no limit), and
    fewer when that spreads the page over the requests the target takes at once (20 groups,
    8 writes in flight: 3 a request, 7 requests in flight, not one of 20)."""
    spread = max(1, -(-creates // max(1, concurrency)))
    return min(most, spread) if most else spread


def _simulated(diff: list[dict[str, Any]], plan: Plan) -> str:
    """A simulated write's entity-log reason: the diff, and what the target would not get."""
    return log_text({"diff": diff, **({"leftOut": list(plan.left_out)} if plan.left_out else {})})


def _variables(item: Item, target_id: str | None) -> dict[str, Any]:
    """The variables a write transformation starts with for an item (and its target id)."""
    variables: dict[str, Any] = {"entityIdSourceSystem": item.source_id}
    if target_id is not None:
        variables["entityIdTargetSystem"] = target_id
    return variables


def _written_hash(
    target: Participant, entity_type: str, plan: Plan, target_id: str, resolver: Resolver
) -> str:
    """The hash stored for an entity written to ``target_id``: always that of the update
    document for that id, the one the next job computes and compares with, whatever wrote
    it (a create, a conflict resolved, a re-create); like is compared with like."""
    record = plan.record
    if plan.hash and record is not None and record.target_entity_id == target_id:
        return plan.hash  # an update: its document was hashed when it was planned
    outcome = target.transformation.apply(
        entity_type,
        plan.item.document,
        operation=Operation.UPDATE,
        variables=_variables(plan.item, target_id),
        resolver=resolver,
    )
    return digest(outcome.document if isinstance(outcome, Transformed) else plan.document or {})


def failed(plan: Plan, exc: Exception) -> None:
    plan.action = Action.FAILED
    plan.reason = exc.message if isinstance(exc, ConfigError | ConnectorError) else str(exc)


class Resolver:
    """``resolveEntityIds`` over operational data: source ids → ids in the target. Answers
    are kept for the page, and a page's members and managers are looked up at once."""

    def __init__(self, run: Run, target: Participant) -> None:
        self.run, self.target = run, target
        self._known: dict[tuple[str, str, str], dict[str, str | None]] = {}

    def prefetch(self, documents: Iterable[Mapping[str, Any]]) -> None:
        ids = {i for d in documents for i in references(d)}
        if ids:
            for entity_type in EntityType:
                self._lookup(self.run.source.id, self.target.id, entity_type, ids)

    def resolve(
        self,
        ids: Sequence[str],
        *,
        entity_type: str,
        source_system: str | None,
        target_system: str | None,
    ) -> dict[str, str]:
        source_id = self.run.source.id
        if source_system:
            source_id = self.run.spec.systems_by_name.get(source_system, source_system)
        target_id = self.target.id
        if target_system:
            target_id = self.run.spec.systems_by_name.get(target_system, target_system)
        known = self._lookup(source_id, target_id, entity_type, ids)
        return {i: found for i in ids if (found := known.get(i)) is not None}

    def _lookup(
        self, source_id: str, target_id: str, entity_type: str, ids: Iterable[str]
    ) -> dict[str, str | None]:
        known = self._known.setdefault((source_id, target_id, entity_type), {})
        missing = [i for i in ids if i not in known]
        if missing:
            found = self.run.opdata.resolve(source_id, target_id, entity_type, missing)
            for i in missing:
                known[i] = found.get(i)
        return known


def references(document: Mapping[str, Any]) -> Iterator[str]:
    """The ids an entity refers to: its members and its manager (also in extensions)."""
    for node in (document, *(v for k, v in document.items() if k.startswith("urn:"))):
        if not isinstance(node, Mapping):
            continue
        members = node.get("members")
        if isinstance(members, list):
            for member in members:
                value = member.get("value") if isinstance(member, Mapping) else None
                if isinstance(value, str):
                    yield value
        manager = node.get("manager")
        value = manager.get("value") if isinstance(manager, Mapping) else None
        if isinstance(value, str):
            yield value


def _value_at(document: Mapping[str, Any], attribute: str) -> str | None:
    """The value of a unique attribute (``userName``, ``emails[0].value``, ``['urn:..']['x']``,
    an LDAP attribute holding a list) in a written document."""
    path = (
        attribute
        if attribute.startswith("$")
        else ("$" + attribute if attribute.startswith("[") else "$." + attribute)
    )
    try:
        value = compile_reader(path)(document, document, Env({}, {}))
    except ValueError:
        return None
    if isinstance(value, list):
        value = value[0] if value else MISSING
    if value is MISSING or value is None or isinstance(value, dict | list):
        return None
    return str(value)
