"""A job's logs as the zip SAP's *Download* and tenant admin API give (spec §3.9, §3.11).

One text file per log kind, named as SAP names it (``ips_jobErrorLogs_<jobId>_<date>_<time>``
...), with the entity logs grouped by entity id, one block per system. ``commonLog`` adds
``job.json`` (the job with its statistics and outcome) and ``summary.txt``.

Entries are written into the zip a few lines at a time (``ZipFile.open(name, "w")``), so
the text of a log kind is never held whole; the entity logs are grouped in memory first
(only the fields written), as their order in the store is not by entity id.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from enum import StrEnum
from typing import Any

import orjson

from provisor.errors import InputError
from provisor.jobs.model import EntityLogEntry, Job, Trigger
from provisor.timestamps import parse_datetime

HIDDEN_CONTENT = "<hidden content>"
PAGE = 5000  # entity logs read from the store at a time
_FLUSH = 64 * 1024  # characters buffered before they go into the zip entry


class LogType(StrEnum):
    """The ``logType`` of the tenant admin API's export."""

    COMMON = "commonLog"
    FAILED = "failedEntitiesLog"
    SKIPPED = "skippedEntitiesLog"
    CREATED = "createdEntitiesLog"
    UPDATED = "updatedEntitiesLog"
    DELETED = "deletedEntitiesLog"
    ALL_ERRORS = "allErrorsLog"


@dataclass(frozen=True, slots=True)
class _Kind:
    action: str  # the entity-log action
    prefix: str  # SAP's file name prefix
    title: str


_KINDS = (
    _Kind("failed", "ips_jobErrorLogs", "Failed entities"),
    _Kind("skipped", "ips_jobSkippedEntitiesLogs", "Skipped entities"),
    _Kind("created", "ips_jobCreatedEntitiesLogs", "Created entities"),
    _Kind("updated", "ips_jobUpdatedEntitiesLogs", "Updated entities"),
    _Kind("deleted", "ips_jobDeletedEntitiesLogs", "Deleted entities"),
)
_BY_ACTION = {k.action: k for k in _KINDS}
_KINDS_OF: dict[LogType, tuple[_Kind, ...]] = {
    LogType.COMMON: _KINDS,
    LogType.FAILED: (_BY_ACTION["failed"],),
    LogType.SKIPPED: (_BY_ACTION["skipped"],),
    LogType.CREATED: (_BY_ACTION["created"],),
    LogType.UPDATED: (_BY_ACTION["updated"],),
    LogType.DELETED: (_BY_ACTION["deleted"],),
    LogType.ALL_ERRORS: (_BY_ACTION["failed"],),
}
_ZIP_PREFIX = {
    **{t: kinds[0].prefix for t, kinds in _KINDS_OF.items()},
    LogType.COMMON: "ips_jobLogs",
    LogType.ALL_ERRORS: "ips_jobAllErrorLogs",
}


def parse_log_type(value: str) -> LogType:
    """The LogType named ``value``; InputError naming the allowed values otherwise."""
    try:
        return LogType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in LogType)
        raise InputError(f"logType is one of {allowed}; not {value!r}.") from None


def actions_of(kind: str) -> tuple[str, ...]:
    """The entity-log actions an export of ``kind`` contains."""
    return tuple(k.action for k in _KINDS_OF[parse_log_type(kind)])


# -- the zip ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Record:
    system_name: str
    reason: str | None
    content: str | None
    time: str | None
    name: str | None = None
    target_entity_id: str | None = None


@dataclass(slots=True)
class _Entity:
    """One entity id's records: one block per (system id, entity type)."""

    blocks: dict[tuple[str, str], list[_Record]] = field(default_factory=dict)


def export_zip(job: Job, logs: Iterable[EntityLogEntry], log_type: str) -> tuple[str, bytes]:
    """The zip of ``job``'s logs of ``log_type``: (file name with ``.zip``, bytes).

    ``logs`` are the job's entity logs as ``JobService.entity_logs`` gives them; entries of
    other actions than the log type's are ignored. Raises InputError for an unknown ``log_type``.
    """
    wanted = parse_log_type(log_type)
    kinds = _KINDS_OF[wanted]
    stamp = _stamp(job)
    grouped = _group(logs, {k.action for k in kinds})
    with_error = wanted in (LogType.COMMON, LogType.ALL_ERRORS)
    buffer = io.BytesIO()
    moment = parse_datetime(_moment(job)).astimezone(UTC)
    year = max(moment.year, 1980)  # the zip format starts in 1980
    date_time = (year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:

        def entry(name: str) -> zipfile.ZipInfo:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            return info

        if wanted is LogType.COMMON:
            counts = {k.action: _count(grouped[k.action]) for k in kinds}
            document = _job_document(job, counts)
            archive.writestr(entry("job.json"), orjson.dumps(document, option=orjson.OPT_INDENT_2))
            names = {k.action: f"{k.prefix}_{job.id}_{stamp}.txt" for k in kinds}
            _write(archive, entry("summary.txt"), _summary(job, counts, names))
        for kind in kinds:
            lines = _entity_log(
                job, kind, grouped[kind.action], with_error=with_error and kind.action == "failed"
            )
            _write(archive, entry(f"{kind.prefix}_{job.id}_{stamp}.txt"), lines)
    return f"{_ZIP_PREFIX[wanted]}_{job.id}_{stamp}.zip", buffer.getvalue()


def _moment(job: Job) -> str:
    return job.ended or job.started or job.created


def _stamp(job: Job) -> str:
    """The job's end (else start, else creation) as ``YYYYMMDD_HHMMSS``, UTC."""
    return parse_datetime(_moment(job)).astimezone(UTC).strftime("%Y%m%d_%H%M%S")


def _group(logs: Iterable[EntityLogEntry], actions: set[str]) -> dict[str, dict[str, _Entity]]:
    """action -> entity id -> its blocks, each in the order first seen."""
    grouped: dict[str, dict[str, _Entity]] = {action: {} for action in actions}
    for row in logs:
        entities = grouped.get(row.action)
        if entities is None:
            continue
        entity = entities.get(row.entity_id)
        if entity is None:
            entity = entities[row.entity_id] = _Entity()
        record = _Record(
            row.system_name, row.reason, row.content, row.time, row.name, row.target_entity_id
        )
        records = entity.blocks.setdefault((row.system_id, row.entity_type), [])
        # a restarted job may log an entity twice (spec §3.9): keep the first
        if not any(r.reason == record.reason and r.content == record.content for r in records):
            records.append(record)
    return grouped


def _count(entities: Mapping[str, _Entity]) -> int:
    return sum(len(records) for e in entities.values() for records in e.blocks.values())


def _write(archive: zipfile.ZipFile, info: zipfile.ZipInfo, lines: Iterable[str]) -> None:
    """Write ``lines`` (each ending with a newline) into a new UTF-8 entry, a chunk at a time."""
    with archive.open(info, "w") as raw:
        chunk: list[str] = []
        size = 0
        for line in lines:
            chunk.append(line)
            size += len(line)
            if size >= _FLUSH:
                raw.write("".join(chunk).encode("utf-8"))
                chunk, size = [], 0
        if chunk:
            raw.write("".join(chunk).encode("utf-8"))


# -- the texts ----------------------------------------------------------------------------------


def _header(job: Job) -> Iterator[str]:
    yield f"Job ID: {job.id}\n"
    yield f"Source System: {job.source_name} ({job.source_id})\n"
    yield f"Job Type: {job.type.value}\n"
    yield f"Status: {job.status.value}\n"
    yield f"Start Time: {job.started or '-'}\n"
    yield f"End Time: {job.ended or '-'}\n"


def _entity_log(
    job: Job, kind: _Kind, entities: Mapping[str, _Entity], *, with_error: bool
) -> Iterator[str]:
    yield f"{kind.title} of the job {job.id}\n"
    yield from _header(job)
    if with_error:
        yield f"Error Message: {job.error or '-'}\n"
    records = _count(entities)
    yield f"Entities: {len(entities)} ({records} record{'' if records == 1 else 's'})\n"
    if not entities:
        yield "\nNo entities.\n"
    for entity_id, entity in entities.items():
        yield f"\n==== Entity ID: {entity_id} ====\n"
        for (system_id, entity_type), rows in entity.blocks.items():
            yield f"-- System: {rows[0].system_name} ({system_id})\n"
            yield f"   Entity Type: {entity_type}\n"
            yield f"   Action: {kind.action}\n"
            for row in rows:
                yield f"   Time: {row.time or '-'}\n"
                if row.name:
                    yield f"   Name: {row.name}\n"
                if row.target_entity_id:
                    yield f"   Entity ID in the target: {row.target_entity_id}\n"
                yield f"   Reason: {row.reason or '-'}\n"
                yield "   Content:\n"
                yield from _indented(row.content or HIDDEN_CONTENT)


def _indented(text: str) -> Iterator[str]:
    for line in text.splitlines() or [""]:
        yield f"      {line}\n"


def _statistics(job: Job) -> list[dict[str, Any]]:
    """The job's statistics as exported: the read count as ``numberRead`` (spec §3.9)."""
    rows = []
    for row in job.statistics:
        rows.append({("numberRead" if k == "read" else k): v for k, v in row.to_dict().items()})
    return rows


def _job_document(job: Job, counts: Mapping[str, int]) -> dict[str, Any]:
    return {**job.to_dict(), "statistics": _statistics(job), "entityLogs": dict(counts)}


_SOURCE_COLUMNS = (("numberRead", "Read"), ("skipped", "Skipped"), ("failed", "Failed"))
_TARGET_COLUMNS = (
    ("created", "Created"),
    ("updated", "Updated"),
    ("deleted", "Deleted"),
    ("skipped", "Skipped"),
    ("failed", "Failed"),
)


def _summary(job: Job, counts: Mapping[str, int], names: Mapping[str, str]) -> Iterator[str]:
    yield "Job Execution Details\n"
    yield f"Job ID: {job.id}\n"
    yield f"Source System: {job.source_name} ({job.source_id})\n"
    yield f"Job Type: {job.type.value}\n"
    yield f"Read Mode: {job.read_mode.value if job.read_mode else '-'}\n"
    yield f"Trigger Type: {job.trigger.value}\n"
    if job.trigger is not Trigger.REPEAT:  # SAP does not show it for scheduled jobs
        yield f"Triggered By: {job.triggered_by}\n"
    yield f"Status: {job.status.value}\n"
    yield f"Start Time: {job.started or '-'}\n"
    yield f"End Time: {job.ended or '-'}\n"
    yield f"Error Message: {job.error or '-'}\n"
    yield f"Job Execution Outcome: {job.outcome or '-'}\n"
    yield "\nStatistics\n"
    statistics = _statistics(job)
    if not statistics:
        yield "  none\n"
    for row in statistics:
        source = row.get("role") == "source"
        columns: Sequence[tuple[str, str]] = _SOURCE_COLUMNS if source else _TARGET_COLUMNS
        figures = ", ".join(f"{label} {int(row.get(key, 0))}" for key, label in columns)
        action = "Read" if source else "Write"
        yield f"  {row['entityType']} · {row['systemName']} ({action}): {figures}\n"
    yield "\nEntity Logs\n"
    for kind in _KINDS:
        yield f"  {kind.title}: {counts.get(kind.action, 0)} in {names[kind.action]}\n"


# -- reading the logs of a job ------------------------------------------------------------------


def entity_log_rows(
    read: Callable[[int, int], Sequence[EntityLogEntry]], *, page: int = PAGE
) -> Iterator[EntityLogEntry]:
    """A job's entity logs, read ``page`` entries at a time: ``read(offset, limit)`` reads
    one page of them."""
    offset = 0
    while True:
        rows = read(offset, page)
        yield from rows
        if len(rows) < page:
            return
        offset += len(rows)
