"""Validation of a source (spec §3.3 "Validate"): a CSV or JSON sample uploaded or pasted, run
through the source's read and each target's write transformation, with every trace; nothing
is read or written."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.console.rendering import ROOT, ConsoleContext, ConsoleRoute, render, services
from provisor.context import Context
from provisor.errors import InputError
from provisor.jobs.validate import ENTITY_TYPES, parse_csv, samples_from_json
from provisor.systems.model import System

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

MAX_SAMPLE = 1_000_000  # bytes of a sample, uploaded or pasted
MAX_ENTITIES = 100  # entities of one validation (each shown with its traces)
FORMATS = ("auto", "csv", "json")


def _source(request: Request, ctx: Context, system_id: str) -> System:
    system = services(request).systems.show(ctx, system_id)
    if system.role is not Role.SOURCE:
        raise InputError(f"{system.name} is a {system.role} system: only sources validate.")
    return system


def _page(request: Request, system: System, status: int = 200, **values: Any) -> Response:
    values.setdefault("entity_type", "user")
    values.setdefault("format", "auto")
    values.setdefault("sample", "")
    return render(
        request,
        "transformations/validate.html",
        status=status,
        system=system,
        formats=FORMATS,
        entity_types=ENTITY_TYPES,
        max_sample=MAX_SAMPLE,
        max_entities=MAX_ENTITIES,
        **values,
    )


@router.get("/systems/{system_id}/validate")
def validate_page(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    return _page(request, _source(request, ctx, system_id))


@router.post("/systems/{system_id}/validate")
async def validate(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    file: UploadFile | None = None,
    sample: Annotated[str, Form(max_length=MAX_SAMPLE)] = "",
    entity_type: Annotated[str, Form(max_length=20)] = "user",
    format: Annotated[str, Form(max_length=10)] = "auto",
) -> Response:
    system = await run_in_threadpool(_source, request, ctx, system_id)
    typed: dict[str, Any] = {"entity_type": entity_type, "format": format, "sample": sample}
    try:
        text, name = sample, ""
        if file is not None and file.filename:
            raw = await file.read(MAX_SAMPLE + 1)
            if len(raw) > MAX_SAMPLE:
                raise InputError(
                    f"The file is larger than {MAX_SAMPLE:,} bytes: send a smaller sample."
                )
            text, name = _decoded(raw), file.filename
        samples = samples_of(text, name, format, entity_type)
        result = await run_in_threadpool(services(request).jobs.validate, ctx, system.id, samples)
    except InputError as exc:
        return _page(request, system, status=400, error=exc.message, **typed)
    return _page(request, system, result=result, **typed)


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("The file is not UTF-8 text: save it as UTF-8 CSV or JSON.") from None


def samples_of(text: str, name: str, format: str, entity_type: str) -> dict[str, list[Any]]:
    """The entities of a sample: CSV (headers are attribute paths) of ``entity_type``, or
    JSON — ``{"users": [...], "groups": [...]}``, a list of entities or one entity."""
    if format not in FORMATS:
        raise InputError(f"The format is one of {', '.join(FORMATS)}.")
    if entity_type not in ENTITY_TYPES:
        raise InputError(f"The entity type is one of {', '.join(ENTITY_TYPES)}.")
    if not text.strip():
        raise InputError("Upload a file or paste a sample.")
    if format == "auto":
        json_like = name.lower().endswith(".json") or text.lstrip()[:1] in ("{", "[")
        format = "json" if json_like and not name.lower().endswith(".csv") else "csv"
    if format == "csv":
        samples = {entity_type: parse_csv(text, entity_type)}
    else:
        samples = _json_samples(text, entity_type)
    count = sum(len(v) for v in samples.values())
    if count == 0:
        raise InputError("The sample has no entity.")
    if count > MAX_ENTITIES:
        raise InputError(
            f"The sample has {count} entities; validate at most {MAX_ENTITIES} at a time."
        )
    return samples


def _json_samples(text: str, entity_type: str) -> dict[str, list[Any]]:
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"The sample is not JSON: {exc}.") from None
    if isinstance(body, list):
        if not all(isinstance(e, dict) for e in body):
            raise InputError("A JSON sample list holds entities (JSON objects).")
        return {entity_type: body}
    if isinstance(body, dict) and not set(body) <= {"users", "groups"}:
        return {entity_type: [body]}
    return samples_from_json(text)
