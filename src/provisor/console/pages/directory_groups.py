"""The Local Identity Directory's groups: search, view, create, rename, members (paged, added
from a userName search, removed), delete; through the Directory service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from provisor.console.pages.directory import (
    MAX_QUERY,
    PAGE,
    SCIM_BASE,
    cursor,
    prefix_range,
    quoted,
    read,
    search,
    search_sorted,
)
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    offer_change,
    redirect,
    render,
    services,
    url,
)
from provisor.context import Context
from provisor.errors import ConflictError, InputError
from provisor.scim import schemas as s
from provisor.scim.errors import MemberNotFoundError
from provisor.types import EntityType
from provisor.web.errors import status_of

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

CANDIDATES = 20  # users offered to add, from a userName prefix
MAX_ADD = 100  # members added at once
MOST_COUNTED = 10_000  # members counted exactly (a larger group shows "10000+")


@router.get("/directory/groups")
def groups(request: Request, ctx: ConsoleContext, q: str = "", after: str = "") -> Response:
    q = q[:MAX_QUERY].strip()
    scim_filter = prefix_range("displayName", q) if q else None
    resources, total, next_id = search(
        request, ctx, EntityType.GROUP, scim_filter, cursor(after), "displayName,externalId"
    )
    return render(
        request,
        "directory/groups.html",
        rows=resources,
        total=total,
        next_id=next_id,
        after=after,
        q=q,
    )


@router.get("/directory/groups/new")
def new_group(request: Request, ctx: ConsoleContext) -> Response:
    offer_change(request)
    return render(request, "directory/group_new.html", display_name="", problem="")


@router.post("/directory/groups/new")
def create_group(
    request: Request,
    ctx: ConsoleContext,
    displayName: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    body = {"schemas": [s.GROUP], "displayName": displayName.strip()}
    try:
        created = services(request).directory.create(ctx, EntityType.GROUP, body, SCIM_BASE)
    except (InputError, ConflictError) as exc:
        return render(
            request,
            "directory/group_new.html",
            status=status_of(exc),
            display_name=displayName,
            problem=exc.message,
        )
    return redirect(
        request, f"/directory/groups/{created.id}", notice=f"Group {body['displayName']} created."
    )


def _group_page(
    request: Request,
    ctx: Context,
    group_id: str,
    *,
    after: str | None = None,
    find: str = "",
    status: int = 200,
    problem: str = "",
) -> Response:
    directory = services(request).directory
    group = read(request, ctx, EntityType.GROUP, group_id)
    members, total, following = directory.members(
        ctx, group_id, after=after, limit=PAGE, most=MOST_COUNTED
    )
    candidates: list[dict[str, Any]] = []
    find = find[:MAX_QUERY].strip()
    if find:
        candidates, _total = search_sorted(
            request,
            ctx,
            EntityType.USER,
            prefix_range("userName", find),
            "userName",
            1,
            "userName,displayName",
            count=CANDIDATES,
        )
    return render(
        request,
        "directory/group.html",
        status=status,
        group=group,
        version=group.get("meta", {}).get("version", ""),
        members=members,
        total=total,
        most=MOST_COUNTED,
        next_link=url(request, f"/directory/groups/{group_id}", after=following)
        if following
        else "",
        first_link=url(request, f"/directory/groups/{group_id}") if after else "",
        find=find,
        candidates=candidates,
        problem=problem,
    )


@router.get("/directory/groups/{group_id}")
def group(
    request: Request,
    ctx: ConsoleContext,
    group_id: str,
    after: str = "",
    find: str = "",
) -> Response:
    return _group_page(request, ctx, group_id, after=cursor(after), find=find)


@router.post("/directory/groups/{group_id}")
def rename_group(
    request: Request,
    ctx: ConsoleContext,
    group_id: str,
    displayName: Annotated[str, Form(max_length=1024)] = "",
    version: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    patch = {
        "schemas": [s.PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": displayName.strip()}],
    }
    return _change(request, ctx, group_id, patch, "Group renamed.", version)


@router.post("/directory/groups/{group_id}/members/add")
def add_members(
    request: Request,
    ctx: ConsoleContext,
    group_id: str,
    member: Annotated[list[str] | None, Form()] = None,
) -> Response:
    if not member:
        raise InputError("Select the users to add first.")
    if len(member) > MAX_ADD:
        raise InputError(f"Add at most {MAX_ADD} members at once.")
    patch = {
        "schemas": [s.PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": m} for m in member]}],
    }
    return _change(request, ctx, group_id, patch, f"{len(member)} member(s) added.")


@router.post("/directory/groups/{group_id}/members/remove")
def remove_member(
    request: Request,
    ctx: ConsoleContext,
    group_id: str,
    member: Annotated[str, Form(max_length=64)],
) -> Response:
    patch = {
        "schemas": [s.PATCH_OP],
        "Operations": [{"op": "remove", "path": f"members[value eq {quoted(member)}]"}],
    }
    return _change(request, ctx, group_id, patch, "Member removed.")


def _change(
    request: Request,
    ctx: Context,
    group_id: str,
    patch: dict[str, Any],
    notice: str,
    version: str = "",
) -> Response:
    try:
        services(request).directory.patch(
            ctx, EntityType.GROUP, group_id, patch, SCIM_BASE, if_match=version or None
        )
    except (InputError, ConflictError, MemberNotFoundError) as exc:
        return _group_page(request, ctx, group_id, status=status_of(exc), problem=exc.message)
    return redirect(request, f"/directory/groups/{group_id}", notice=notice)


@router.post("/directory/groups/{group_id}/delete")
def delete_group(request: Request, ctx: ConsoleContext, group_id: str) -> Response:
    group = read(request, ctx, EntityType.GROUP, group_id)
    services(request).directory.delete(ctx, EntityType.GROUP, group_id)
    return redirect(
        request, "/directory/groups", notice=f"Group {group.get('displayName')} deleted."
    )


__all__ = ["router"]
