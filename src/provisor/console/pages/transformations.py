"""Transformations of a system: the JSON editor with live located problems, the table view of
the mappings, versions with their differences, apply and reset, and "try it" with the trace of
each mapping."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from provisor.console.diffs import side_by_side
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    redirect,
    render,
    services,
)
from provisor.context import Context
from provisor.errors import InputError, InvalidTransformationError
from provisor.systems.model import System
from provisor.transform import Failed, Ignored, Operation, Outcome, Skipped, Transformed
from provisor.transform.document import SCOPES, read_document
from provisor.transform.locate import Problem, locate
from provisor.transform.table import rewrite, rows

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

MAX_TEXT = 1_000_000  # characters of a document typed in the editor
MAX_ENTITY = 256_000  # characters of a sample entity typed in "try it"
VERSIONS_PAGE = 20
DIRECTORY_TYPE = "local-identity-directory"
WRITE_OPERATIONS = (Operation.CREATE, Operation.UPDATE, Operation.PATCH, Operation.DELETE)

Text = Annotated[str, Form(max_length=MAX_TEXT)]
Description = Annotated[str, Form(max_length=500)]


def _base(system_id: str, kind: str = "") -> str:
    path = f"/systems/{system_id}/transformations"
    return f"{path}/{kind}" if kind else path


def _system(request: Request, ctx: Context, system_id: str, kind: str | None = None) -> System:
    system = services(request).systems.show(ctx, system_id)
    if kind is not None and kind not in system.kinds:
        raise InputError(
            f"{system.name} has a {' and a '.join(system.kinds)} transformation, not {kind!r}."
        )
    return system


def _operations(kind: str) -> tuple[Operation, ...]:
    return (Operation.READ,) if kind == "read" else WRITE_OPERATIONS


@router.get("/systems/{system_id}/transformations")
def overview(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    system = _system(request, ctx, system_id)
    current = services(request).systems.transformations(ctx, system.id)
    return render(request, "transformations/overview.html", system=system, latest=current)


@router.get("/systems/{system_id}/transformations/{kind}")
def editor(request: Request, ctx: ConsoleContext, system_id: str, kind: str) -> Response:
    system = _system(request, ctx, system_id, kind)
    found = services(request).systems
    current = found.read_transformation(ctx, system.id, kind)
    problems = found.check_transformation(ctx, system.id, kind, current.text)
    return _editor(request, system, kind, current.text, problems, latest=current.version)


def _editor(
    request: Request,
    system: System,
    kind: str,
    text: str,
    problems: list[Problem],
    *,
    latest: int,
    description: str = "",
    status: int = 200,
) -> Response:
    return render(
        request,
        "transformations/editor.html",
        status=status,
        system=system,
        kind=kind,
        text=text,
        problems=problems,
        latest=latest,
        description=description,
    )


@router.post("/systems/{system_id}/transformations/{kind}")
def save(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    kind: str,
    text: Text,
    description: Description = "",
    system_version: Annotated[int | None, Form()] = None,
) -> Response:
    system = _system(request, ctx, system_id, kind)
    found = services(request).systems
    try:
        saved = found.save_transformation(
            ctx, system.id, kind, text, description=description, if_match=system_version
        )
    except InvalidTransformationError as exc:
        problems = locate(text, exc.problems)
    except InputError as exc:
        problems = [Problem(exc.message)]
    else:
        return redirect(
            request, _base(system.id, kind), notice=f"Saved as version {saved.version}."
        )
    latest = found.read_transformation(ctx, system.id, kind).version
    return _editor(
        request, system, kind, text, problems, latest=latest, description=description, status=400
    )


class Check(BaseModel):
    text: str = Field(max_length=MAX_TEXT)


@router.post("/systems/{system_id}/transformations/{kind}/check")
def check(
    request: Request, ctx: ConsoleContext, system_id: str, kind: str, body: Check
) -> Response:
    """The editor's live check: every problem of the text, placed (JSON)."""
    problems = services(request).systems.check_transformation(ctx, system_id, kind, body.text)
    return JSONResponse({"problems": [p.to_dict() for p in problems]})


# -- the table view ---------------------------------------------------------------------------


@router.get("/systems/{system_id}/transformations/{kind}/table")
def table(request: Request, ctx: ConsoleContext, system_id: str, kind: str) -> Response:
    system = _system(request, ctx, system_id, kind)
    current = services(request).systems.read_transformation(ctx, system.id, kind)
    return _table(request, system, kind, read_document(current.text), current.version)


def _table(
    request: Request,
    system: System,
    kind: str,
    data: dict[str, Any],
    latest: int,
    problems: list[Problem] | None = None,
    status: int = 200,
) -> Response:
    found = rows(data)
    sections: dict[str, list[Any]] = {}
    for row in found:
        sections.setdefault(row.section, []).append(row)
    return render(
        request,
        "transformations/table.html",
        status=status,
        system=system,
        kind=kind,
        sections=sections,
        scopes=SCOPES,
        latest=latest,
        problems=problems or [],
    )


@router.post("/systems/{system_id}/transformations/{kind}/table")
async def save_table(request: Request, ctx: ConsoleContext, system_id: str, kind: str) -> Response:
    form = await request.form()
    edits: dict[str, dict[str, str]] = {}
    for name, value in form.multi_items():
        row, sep, cell = name.partition("|")
        if sep and isinstance(value, str):
            edits.setdefault(row, {})[cell] = value
    description = str(form.get("description") or "Edited in the table view")
    version = str(form.get("system_version") or "")
    return await run_in_threadpool(
        _save_table, request, ctx, system_id, kind, edits, description, version
    )


def _save_table(
    request: Request,
    ctx: Context,
    system_id: str,
    kind: str,
    edits: dict[str, dict[str, str]],
    description: str,
    version: str,
) -> Response:
    system = _system(request, ctx, system_id, kind)
    found = services(request).systems
    current = found.read_transformation(ctx, system.id, kind)
    data = read_document(current.text)
    try:
        changed = rewrite(data, edits)
        text = orjson.dumps(changed, option=orjson.OPT_INDENT_2).decode()
        saved = found.save_transformation(
            ctx,
            system.id,
            kind,
            text,
            description=description[:500],
            if_match=int(version) if version.isdigit() else None,
        )
    except InvalidTransformationError as exc:
        return _table(
            request, system, kind, changed, current.version, [Problem(p) for p in exc.problems], 400
        )
    except InputError as exc:
        return _table(request, system, kind, data, current.version, [Problem(exc.message)], 400)
    return redirect(
        request, _base(system.id, kind) + "/table", notice=f"Saved as version {saved.version}."
    )


# -- versions ---------------------------------------------------------------------------------


@router.get("/systems/{system_id}/transformations/{kind}/versions")
def versions(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    kind: str,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    a: Annotated[int | None, Query(ge=1)] = None,
    b: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    system = _system(request, ctx, system_id, kind)
    found = services(request).systems
    page, total = found.history(ctx, system.id, kind, offset=offset, limit=VERSIONS_PAGE)
    current = found.read_transformation(ctx, system.id, kind).version
    diff = None
    if a is not None and b is not None:
        old = found.read_transformation(ctx, system.id, kind, a)
        new = found.read_transformation(ctx, system.id, kind, b)
        diff = side_by_side(old.text, new.text)
    return render(
        request,
        "transformations/versions.html",
        system=system,
        kind=kind,
        versions=page,
        total=total,
        offset=offset,
        limit=VERSIONS_PAGE,
        latest=current,
        a=a or (current - 1 if current > 1 else current),
        b=b or current,
        diff=diff,
    )


@router.get("/systems/{system_id}/transformations/{kind}/versions/{version}")
def version(
    request: Request, ctx: ConsoleContext, system_id: str, kind: str, version: int
) -> Response:
    system = _system(request, ctx, system_id, kind)
    found = services(request).systems
    shown = found.read_transformation(ctx, system.id, kind, version)
    current = found.read_transformation(ctx, system.id, kind).version
    return render(
        request,
        "transformations/version.html",
        system=system,
        kind=kind,
        shown=shown,
        latest=current,
    )


@router.post("/systems/{system_id}/transformations/{kind}/versions/{version}/apply")
def apply(
    request: Request, ctx: ConsoleContext, system_id: str, kind: str, version: int
) -> Response:
    system = _system(request, ctx, system_id, kind)
    saved = services(request).systems.apply_version(ctx, system.id, kind, version)
    return redirect(
        request,
        _base(system.id, kind) + "/versions",
        notice=f"Version {version} applied as version {saved.version}.",
    )


@router.post("/systems/{system_id}/transformations/{kind}/reset")
def reset(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    kind: str,
    to: Annotated[str, Form(max_length=20)] = "default",
) -> Response:
    system = _system(request, ctx, system_id, kind)
    saved = services(request).systems.reset_transformation(ctx, system.id, kind, to=to)
    return redirect(
        request,
        _base(system.id, kind) + "/versions",
        notice=f"Reset to the {to} document as version {saved.version}.",
    )


# -- try it -----------------------------------------------------------------------------------


def _try_page(
    request: Request,
    system: System,
    kind: str,
    *,
    entity_type: str = "user",
    operation: str = "",
    entity: str = "",
    variables: str = "",
    outcome: Outcome | None = None,
    error: str = "",
    lookup: str = "",
    status: int = 200,
) -> Response:
    return render(
        request,
        "transformations/try.html",
        status=status,
        system=system,
        kind=kind,
        operations=_operations(kind),
        entity_type=entity_type,
        operation=operation or _operations(kind)[0].value,
        entity=entity,
        variables=variables,
        result=None if outcome is None else outcome_of(outcome),
        error=error,
        lookup=lookup,
        can_fetch=system.type.id == DIRECTORY_TYPE and kind == "read",
    )


@router.get("/systems/{system_id}/transformations/{kind}/try")
async def try_page(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    kind: str,
    user_name: Annotated[str, Query(alias="userName", max_length=255)] = "",
) -> Response:
    """The "try it" form; with ``userName`` (a directory source), that user fetched through
    the system's connector and run through the read transformation."""
    found = services(request).systems
    system = await run_in_threadpool(_system, request, ctx, system_id, kind)
    if not user_name:
        return _try_page(request, system, kind)
    sample = await found.sample_entity(ctx, system.id, "user", "userName", user_name)
    if sample is None:
        return _try_page(
            request, system, kind, error=f"No user {user_name!r} found.", lookup=user_name
        )
    entity = orjson.dumps(sample, option=orjson.OPT_INDENT_2).decode()
    outcome = await run_in_threadpool(
        found.try_transformation, ctx, system.id, kind, "user", sample, operation="read"
    )
    return _try_page(request, system, kind, entity=entity, outcome=outcome, lookup=user_name)


@router.post("/systems/{system_id}/transformations/{kind}/try")
def run_try(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    kind: str,
    entity: Annotated[str, Form(max_length=MAX_ENTITY)],
    entity_type: Annotated[str, Form(max_length=20)] = "user",
    operation: Annotated[str, Form(max_length=20)] = "",
    variables: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    system = _system(request, ctx, system_id, kind)
    try:
        sample = _json_object(entity, "The entity")
        seeded = _json_object(variables, "The variables") if variables.strip() else None
        outcome = services(request).systems.try_transformation(
            ctx,
            system.id,
            kind,
            entity_type,
            sample,
            operation=operation or _operations(kind)[0].value,
            variables=seeded,
        )
    except InvalidTransformationError as exc:
        error = "The current document is invalid: " + "; ".join(exc.problems)
    except InputError as exc:
        error = exc.message
    else:
        error = ""
    return _try_page(
        request,
        system,
        kind,
        entity_type=entity_type,
        operation=operation,
        entity=entity,
        variables=variables,
        outcome=None if error else outcome,
        error=error,
        status=400 if error else 200,
    )


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{what} is not JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise InputError(f"{what} is a JSON object ({{...}}).")
    return value


def outcome_of(outcome: Outcome) -> dict[str, Any]:
    """An outcome as the validation shows one: status, output or reason, trace."""
    if isinstance(outcome, Transformed):
        return {
            "status": "Transformed",
            "document": outcome.document,
            "trace": [s.to_dict() for s in outcome.trace],
        }
    if isinstance(outcome, Skipped | Failed):
        return {
            "status": type(outcome).__name__,
            "reason": outcome.reason,
            "trace": [s.to_dict() for s in outcome.trace],
        }
    if isinstance(outcome, Ignored):
        return {"status": "Ignored", "reason": outcome.reason}
    return {"status": "Deleted", "reason": "The entity would be deleted in the target."}
