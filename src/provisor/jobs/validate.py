"""Validation (spec §3.3 "Validate"): sample entities through the source's read and every
target's write transformation, with the trace, writing nothing.

Samples come as JSON entities or as CSV whose headers are the source's attribute paths in
dot notation (``userName``, ``name.familyName``, ``emails[0].value``); an empty cell leaves
its attribute out. Unlike SAP there is no 10-row cap.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from provisor.errors import InputError
from provisor.transform import Failed, Ignored, Operation, Skipped, Transformation, Transformed
from provisor.transform.jsonpath import Env, Writer, drop_gaps
from provisor.types import EntityType

ENTITY_TYPES = tuple(EntityType)


@dataclass(frozen=True, slots=True)
class Stage:
    """A system's transformation in the validation: its name and compiled document."""

    name: str
    transformation: Transformation


def parse_csv(text: str, entity_type: str) -> list[dict[str, Any]]:
    """Entities from CSV text; InputError names the row and column that cannot be read."""
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(rows, None)
    if not header or not any(h.strip() for h in header):
        raise InputError(f"The {entity_type} CSV has no header row.")
    writers = []
    for column, name in enumerate(header, start=1):
        path = name.strip()
        try:
            writers.append(Writer(f"$.{path}" if not path.startswith("$") else path))
        except Exception:
            raise InputError(
                f"The {entity_type} CSV header {name!r} (column {column}) is not an attribute "
                "path such as name.familyName or emails[0].value."
            ) from None
    entities = []
    env = Env(variables={}, properties={})
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(
                f"Row {number} of the {entity_type} CSV has {len(row)} fields; "
                f"the header has {len(header)}."
            )
        entity: dict[str, Any] = {}
        for writer, cell in zip(writers, row, strict=True):
            if cell != "":
                writer.write(entity, cell, env)
        entities.append(drop_gaps(entity))
    return entities


def samples_from_json(data: bytes | str) -> dict[str, list[Any]]:
    """``{"users": [...] | "csv", "groups": [...] | "csv"}`` as entities per entity type."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"The body is not JSON: {exc}.") from None
    if not isinstance(body, dict) or not body:
        raise InputError('Send {"users": [...], "groups": [...]} (entities or CSV text).')
    unknown = sorted(set(body) - {"users", "groups"})
    if unknown:
        raise InputError(f"Unknown field(s) {', '.join(unknown)}: use users and groups.")
    samples: dict[str, list[Any]] = {}
    for key, entity_type in (("users", "user"), ("groups", "group")):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            samples[entity_type] = parse_csv(value, entity_type)
        elif isinstance(value, list) and all(isinstance(e, dict) for e in value):
            samples[entity_type] = value
        else:
            raise InputError(f"{key} is a list of JSON objects or CSV text.")
    return samples


def validate(
    source: Stage,
    targets: Sequence[Stage],
    samples: Mapping[str, Iterable[Any]],
) -> dict[str, Any]:
    """Each sample's read outcome and, per target, what its create would send."""
    results = []
    for entity_type in ENTITY_TYPES:
        for position, raw in enumerate(samples.get(entity_type, ()), start=1):
            results.append(_one(source, targets, entity_type, position, raw))
    return {
        "source": source.name,
        "targets": [t.name for t in targets],
        "entities": results,
    }


def _one(
    source: Stage, targets: Sequence[Stage], entity_type: str, position: int, raw: Any
) -> dict[str, Any]:
    read = source.transformation.apply(entity_type, raw, operation=Operation.READ, trace=True)
    result: dict[str, Any] = {"entityType": entity_type, "sample": position}
    result["read"] = _outcome(read)
    if not isinstance(read, Transformed):
        result["targets"] = []
        return result
    source_id = read.variables.get("entityIdSourceSystem")
    result["sourceId"] = None if source_id is None else str(source_id)
    variables = {"entityIdSourceSystem": result["sourceId"] or str(position)}
    result["targets"] = [
        {
            "target": target.name,
            "operation": "create",
            **_outcome(
                target.transformation.apply(
                    entity_type,
                    read.document,
                    operation=Operation.CREATE,
                    variables=dict(variables),
                    trace=True,
                )
            ),
        }
        for target in targets
    ]
    return result


def _outcome(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, Transformed):
        return {
            "status": "Transformed",
            "document": outcome.document,
            "trace": [s.to_dict() for s in outcome.trace],
        }
    if isinstance(outcome, Skipped | Failed):
        return {
            "status": "Skipped" if isinstance(outcome, Skipped) else "Failed",
            "reason": outcome.reason,
            "trace": [s.to_dict() for s in outcome.trace],
        }
    if isinstance(outcome, Ignored):
        return {"status": "Ignored", "reason": outcome.reason}
    return {"status": type(outcome).__name__}
