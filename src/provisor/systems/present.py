"""Systems, their transformations and the connector types as the admin API's JSON, which
``provisor systems ... --json`` prints too: pure functions of the service's results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provisor.connectors.types import ConnectorType, PropertySpec
from provisor.systems.model import System, TransformationVersion
from provisor.systems.service import TestResult, document_of


def system(found: System) -> dict[str, Any]:
    return found.to_dict()


def systems(found: Sequence[System], total: int, **page: int) -> dict[str, Any]:
    """A page of systems (``offset``/``limit`` as given)."""
    return {"items": [s.to_dict() for s in found], "total": total, **page}


def imported(found: System, warnings: Sequence[str]) -> dict[str, Any]:
    return {**found.to_dict(), "warnings": list(warnings)}


def properties(found: System) -> dict[str, Any]:
    return {"properties": found.properties, "credentialKeys": list(found.credential_keys)}


def transformation(version: TransformationVersion) -> dict[str, Any]:
    """A version with its document and its text (comments kept)."""
    return {**version.summary(), "document": document_of(version.text), "text": version.text}


def transformations(current: Sequence[TransformationVersion]) -> dict[str, Any]:
    """The current transformations by kind."""
    return {v.kind: transformation(v) for v in current}


def history(versions: Sequence[TransformationVersion], total: int, **page: int) -> dict[str, Any]:
    return {"items": [v.summary() for v in versions], "total": total, **page}


def connection_test(result: TestResult, *, rounded: bool = True) -> dict[str, Any]:
    seconds = round(result.seconds, 3) if rounded else result.seconds
    return {"ok": result.ok, "message": result.message, "seconds": seconds}


def property_spec(spec: PropertySpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": spec.key,
        "type": spec.kind.value,
        "default": spec.default,
        "seeded": spec.seeded,
        "roles": sorted(spec.roles),
        "requiredFor": sorted(spec.required),
        "description": spec.description,
    }
    if spec.choices:
        out["allowedValues"] = list(spec.choices)
    if spec.minimum is not None:
        out["minimum"] = spec.minimum
    if spec.maximum is not None:
        out["maximum"] = spec.maximum
    return out


def connector_type(kind: ConnectorType, *, properties: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": kind.id,
        "name": kind.name,
        "prefix": kind.prefix,
        "roles": sorted(kind.roles),
        "entityTypes": list(kind.entity_types),
        "description": kind.description,
    }
    if properties:
        out["properties"] = [property_spec(p) for p in kind.properties]
    return out
