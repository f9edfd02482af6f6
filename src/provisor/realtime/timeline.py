"""The identity timeline: everything jobs and real-time pushes did to one person, in every
target, newest first; and, per target linked to the person's source, where they stand now
(an account there or not, and the last outcome) — "why has Alice no account in the CRM?".

A person is looked up by what an administrator knows: a userName, an e-mail address or an id
(of a Local Identity Directory user, or of the entity in a source). The directory turns an
e-mail or userName into its user's id; job logs turn names into source ids and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from provisor.context import Context, Permission, requires
from provisor.directory.service import Directory, ListQuery
from provisor.errors import InputError
from provisor.realtime import timeline_store as store
from provisor.realtime.timeline_store import Key, Linked
from provisor.storage.database import Database, Transaction
from provisor.types import EntityType

MAX_QUERY = 512
MAX_LIMIT = 100
MAX_OFFSET = 5000  # events paged through (newest first); older ones: the job's own page
MAX_KEYS = 20  # (source, id) pairs of one person whose targets are shown
LID_TYPE = "local-identity-directory"
DIRECTORY_MATCHES = 5


@dataclass(frozen=True, slots=True)
class Person:
    """A Local Identity Directory user the query named."""

    id: str
    user_name: str


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a job or a real-time push did to the person in one system."""

    time: str
    origin: str  # "job" | "realtime"
    job_id: str | None  # the job, or None for a real-time push
    job_type: str | None
    log_id: str | None  # the real-time log
    source_name: str
    system_id: str
    system_name: str
    entity_type: str
    entity_id: str
    name: str | None
    action: str  # created, updated, deleted, skipped, failed... (a state for real-time)
    reason: str | None
    target_entity_id: str | None = None
    content: str | None = None  # kept when ips.trace.* asked for it (a diff for SIMULATE)
    # a real-time push: (system name, role, state, reason) of each system it reached
    systems: tuple[tuple[str, str, str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class TargetState:
    """Where the person stands in one target linked to their source."""

    source_name: str
    target_id: str
    target_name: str
    enabled: bool
    entity_type: str
    entity_id: str
    target_entity_id: str | None  # from the operational data: None, no account written
    written: str | None  # when the operational data last changed
    last_action: str | None  # the newest outcome logged for this target
    last_reason: str | None
    last_time: str | None
    last_job_id: str | None


@dataclass(slots=True)
class Timeline:
    query: str
    people: list[Person] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    total: int = 0
    offset: int = 0
    limit: int = 50
    targets: list[TargetState] = field(default_factory=list)


class IdentityTimeline:
    """Reads the job and real-time logs of one person (read-only: ``view``)."""

    def __init__(self, db: Database, directory: Directory) -> None:
        self.db = db
        self.directory = directory

    @requires(Permission.VIEW)
    def find(self, ctx: Context, query: str, *, offset: int = 0, limit: int = 50) -> Timeline:
        """The person ``query`` names, their events newest first (a page) and their state
        in each target linked to their sources."""
        query = query.strip()
        if not query or len(query) > MAX_QUERY:
            raise InputError(
                f"Name a person: a userName, e-mail or id of 1 to {MAX_QUERY} characters."
            )
        if not 0 <= offset <= MAX_OFFSET:
            raise InputError(f"Page within the newest {MAX_OFFSET} events.")
        limit = max(1, min(limit, MAX_LIMIT))
        people = self._people(ctx, query)
        ids = _unique([query, *(p.id for p in people)])
        names = _unique([query, *(p.user_name for p in people)])
        found = Timeline(query=query, people=people, offset=offset, limit=limit)
        with self.db.read(ctx) as tx:
            ids = _unique([*ids, *store.ids_named(tx, names)])[: store.MAX_KEYS]
            names = _unique([*names, *store.names_of(tx, ids)])[: store.MAX_KEYS]
            window = offset + limit
            jobs, job_total = store.job_entries(tx, ids, names, window)
            pushes, push_total = store.realtime_entries(tx, ids, window)
            found.targets = self._targets(tx, store.keys(tx, ids, names), people)
        events = [_job_event(r) for r in jobs] + [_push_event(r) for r in pushes]
        events.sort(key=lambda e: e.time, reverse=True)
        found.ids, found.names = ids, names
        found.events = events[offset:window]
        found.total = job_total + push_total
        return found

    def _people(self, ctx: Context, query: str) -> list[Person]:
        """Directory users with this userName, e-mail or id: one indexed lookup each (one
        filter joining them with ``or`` made PostgreSQL read every user in id order, 280 ms
        with 100,000 users: the e-mails' ``IN`` cannot join the other indexes)."""
        literal = orjson.dumps(query).decode()
        people: dict[str, Person] = {}
        for attribute in ("userName", "emails", "id"):
            page = ListQuery(
                filter=f"{attribute} eq {literal}", count=DIRECTORY_MATCHES, attributes="userName"
            )
            found = orjson.loads(self.directory.search(ctx, EntityType.USER, page, "/scim"))
            for r in found.get("Resources", []):
                people.setdefault(r["id"], Person(r["id"], r.get("userName", "")))
        return list(people.values())[:DIRECTORY_MATCHES]

    def _targets(self, tx: Transaction, keys: list[Key], people: list[Person]) -> list[TargetState]:
        """Each person's state in every target linked to a source that knows them."""
        known = list(keys)
        if people:  # the directory as a source knows its users by their id
            for source_id in store.sources_of_type(tx, LID_TYPE):
                known.extend(Key(source_id, EntityType.USER.value, p.id) for p in people)
        known = list(dict.fromkeys(known))[:MAX_KEYS]
        sources = store.systems_of(tx, [k.source_id for k in known])
        linked = store.targets_of(tx, list(sources))
        states: list[TargetState] = []
        for key in known:
            source = sources.get(key.source_id)
            if source is None:
                continue
            pushed = store.last_realtime(tx, key)
            for target in linked.get(source.id, []):
                states.append(_state(tx, key, source, target, pushed))
        return states


def _state(
    tx: Transaction, key: Key, source: Linked, target: Linked, pushed: dict[str, Any] | None
) -> TargetState:
    record = store.record(tx, key, target.id)
    last = store.last_entry(tx, key, target.id)
    action, reason, time, job_id = (
        (last["action"], last["reason"], last["created"], last["job_id"]) if last else (None,) * 4
    )
    if pushed is not None and (time is None or pushed["started"] > time):
        for result in pushed["systems"]:
            if result.get("systemId") == target.id:
                action, reason = result.get("state"), result.get("reason")
                time, job_id = pushed["started"], None
    return TargetState(
        source_name=source.name,
        target_id=target.id,
        target_name=target.name,
        enabled=target.enabled,
        entity_type=key.entity_type,
        entity_id=key.entity_id,
        target_entity_id=record["target_entity_id"] if record else None,
        written=record["modified"] if record else None,
        last_action=action,
        last_reason=reason,
        last_time=time,
        last_job_id=job_id,
    )


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _job_event(row: dict[str, Any]) -> Event:
    job = row["job"]
    return Event(
        time=row["created"],
        origin="job",
        job_id=row["job_id"],
        job_type=job.get("type"),
        log_id=None,
        source_name=job.get("source_name", ""),
        system_id=row["system_id"],
        system_name=row["system_name"],
        entity_type=row["entity_type"],
        entity_id=row["entity_id"],
        name=row["name"],
        action=row["action"],
        reason=row["reason"],
        target_entity_id=row["target_entity_id"],
        content=row["content"],
    )


def _push_event(row: dict[str, Any]) -> Event:
    """A real-time push, with what it did in each system it reached."""
    return Event(
        time=row["started"],
        origin="realtime",
        job_id=None,
        job_type=row["operation"],
        log_id=row["id"],
        source_name=row["source_name"],
        system_id=row["source_id"],
        system_name=row["source_name"],
        entity_type=row["entity_type"],
        entity_id=row["entity_id"] or "",
        name=None,
        action=row["status"],
        reason=row["error"],
        systems=tuple(
            (r.get("systemName", ""), r.get("role", ""), r.get("state", ""), r.get("reason"))
            for r in row["systems"]
        ),
    )
