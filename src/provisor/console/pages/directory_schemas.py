"""The Local Identity Directory's custom schemas (they extend User): list, view, create from
JSON, delete; through the Directory service, as /scim/Schemas."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from provisor.console.pages.directory import MAX_JSON, SCIM_BASE, parsed_json
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    redirect,
    render,
    services,
)
from provisor.context import Context
from provisor.errors import ConflictError, InputError
from provisor.scim.errors import ResourceNotFoundError
from provisor.web.errors import status_of

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

EXAMPLE = """{
  "id": "urn:example:params:scim:schemas:extension:2.0:Badge",
  "name": "Badge",
  "description": "Building badges",
  "attributes": [
    {"name": "badgeNumber", "type": "string", "multiValued": false, "required": false,
     "caseExact": false, "mutability": "readWrite", "returned": "default",
     "uniqueness": "server"}
  ]
}"""


def _listing(
    request: Request, ctx: Context, status: int = 200, problem: str = "", text: str = EXAMPLE
) -> Response:
    registry = services(request).directory.schemas(ctx)
    return render(
        request,
        "directory/schemas.html",
        status=status,
        schemas=registry.custom,
        problem=problem,
        text=text,
    )


@router.get("/directory/schemas")
def schemas(request: Request, ctx: ConsoleContext) -> Response:
    return _listing(request, ctx)


@router.get("/directory/schemas/view")
def schema(request: Request, ctx: ConsoleContext, id: str = "") -> Response:
    found = services(request).directory.schemas(ctx).schema(id[:512])
    if found is None or not found.custom:
        raise ResourceNotFoundError(f"No custom schema {id!r}.")
    document = orjson.dumps(found.to_scim(SCIM_BASE), option=orjson.OPT_INDENT_2).decode()
    return render(request, "directory/schema.html", schema=found, document=document)


@router.post("/directory/schemas")
def create_schema(
    request: Request,
    ctx: ConsoleContext,
    document: Annotated[str, Form(max_length=MAX_JSON)],
) -> Response:
    try:
        created = services(request).directory.create_schema(ctx, parsed_json(document))
    except (InputError, ConflictError) as exc:
        return _listing(request, ctx, status_of(exc), exc.message, document)
    return redirect(
        request, "/directory/schemas/view", notice=f"Schema {created.name} added.", id=created.id
    )


@router.post("/directory/schemas/delete")
def delete_schema(
    request: Request, ctx: ConsoleContext, id: Annotated[str, Form(max_length=512)]
) -> Response:
    services(request).directory.delete_schema(ctx, id)
    return redirect(request, "/directory/schemas", notice=f"Schema {id} deleted.")


__all__ = ["router"]
