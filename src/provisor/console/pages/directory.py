"""The Local Identity Directory's users: search (a simple box or a SCIM filter), view, create,
edit (a form for the common attributes, JSON for the rest), delete; through the Directory
service, with the same rules as /scim."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

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
from provisor.directory.service import ListQuery
from provisor.errors import ConflictError, InputError
from provisor.scim import schemas as s
from provisor.types import EntityType
from provisor.web.errors import status_of

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 50  # users or groups on a page
SCIM_BASE = "/scim"  # where the resources live (their meta.location)
LIST_ATTRIBUTES = "userName,name,displayName,emails,active"
MAX_QUERY = 256
MAX_FILTER = 2000
MAX_JSON = 256 * 1024
_CURSOR = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_HIDDEN = ("schemas", "id", "meta", "groups")


def quoted(value: str) -> str:
    """``value`` as a SCIM filter string literal."""
    return orjson.dumps(value).decode()


def prefix_range(attribute: str, prefix: str) -> str:
    """A filter for values of ``attribute`` starting with ``prefix`` that the database
    answers from the attribute's index: a range [prefix, next) (``sw`` scans the table)."""
    lowered = prefix.lower()
    upper = lowered[:-1] + chr(ord(lowered[-1]) + 1)
    return f"({attribute} ge {quoted(lowered)} and {attribute} lt {quoted(upper)})"


SEARCHES = {
    "userName": "userName starts with",
    "displayName": "display name starts with",
    "email": "e-mail is",
}
MAX_START = 10_000  # the simple search pages through this many matches (then: refine it)


def simple_filter(q: str, by: str) -> tuple[str, str | None]:
    """The SCIM filter of the simple search box, and the attribute to sort by: each is
    served by an index (a key range, or an equality), in the index's order."""
    q = q.strip()
    if by == "email":
        return f"emails eq {quoted(q)}", None
    if by == "displayName":
        return prefix_range("displayName", q), "displayName"
    if "@" in q:  # a userName written as an address, or the address itself
        return f"{prefix_range('userName', q)} or emails eq {quoted(q)}", "userName"
    return prefix_range("userName", q), "userName"


def number(value: str, name: str, low: int, high: int) -> int:
    """A whole number from the query string, within [low, high], or a readable error."""
    if not value:
        return low
    try:
        found = int(value)
    except ValueError:
        found = low - 1
    if not low <= found <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}.")
    return found


def cursor(value: str) -> str | None:
    """A page's cursor (startId) from the query string; None for the first page."""
    if not value:
        return None
    if not _CURSOR.match(value):
        raise InputError("That page link is not valid: start again from the first page.")
    return value


def search(
    request: Request,
    ctx: Context,
    kind: EntityType,
    scim_filter: str | None,
    after: str | None,
    attributes: str,
) -> tuple[list[dict[str, Any]], int, str]:
    """A page of users or groups by cursor (id order): the resources, how many match, the
    next page's cursor (empty on the last page)."""
    query = ListQuery(
        filter=scim_filter or None,
        start_id=after or "initial",
        count=PAGE,
        attributes=attributes,
    )
    found = orjson.loads(services(request).directory.search(ctx, kind, query, SCIM_BASE))
    next_id = found.get("nextId") or ""
    return found.get("Resources", []), int(found.get("totalResults", 0)), _next(next_id)


def search_sorted(
    request: Request,
    ctx: Context,
    kind: EntityType,
    scim_filter: str,
    sort_by: str | None,
    start: int,
    attributes: str,
    count: int = PAGE,
) -> tuple[list[dict[str, Any]], int]:
    """A page of users or groups from ``start`` (1-based) in ``sort_by`` order, and how
    many match."""
    query = ListQuery(
        filter=scim_filter, sort_by=sort_by, start_index=start, count=count, attributes=attributes
    )
    found = orjson.loads(services(request).directory.search(ctx, kind, query, SCIM_BASE))
    return found.get("Resources", []), int(found.get("totalResults", 0))


def _next(value: str) -> str:
    return "" if value in ("", "end") else value


def read(request: Request, ctx: Context, kind: EntityType, resource_id: str) -> dict[str, Any]:
    """A user (with its groups) or a group (without its members: they are paged apart)."""
    excluded = "members" if kind is EntityType.GROUP else None
    rendered = services(request).directory.get(ctx, kind, resource_id, SCIM_BASE, excluded=excluded)
    assert rendered.body is not None
    doc: dict[str, Any] = orjson.loads(rendered.body)
    return doc


def editable(doc: dict[str, Any]) -> str:
    """A resource as the JSON an administrator edits: without id, meta and groups."""
    body = {k: v for k, v in doc.items() if k not in ("id", "meta", "groups")}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()


def parsed_json(text: str) -> Any:
    if len(text) > MAX_JSON:
        raise InputError(f"The JSON is larger than {MAX_JSON // 1024} KiB.")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"That is not JSON: {exc}.") from None


def primary_email(doc: dict[str, Any]) -> str:
    emails = [e for e in doc.get("emails", ()) if isinstance(e, dict)]
    first = next((e for e in emails if e.get("primary")), emails[0] if emails else {})
    value = first.get("value", "")
    return value if isinstance(value, str) else ""


def sections(request: Request, ctx: Context, doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The resource's attributes by schema: core first, then each extension it has,
    named as the directory's schemas name them."""
    registry = services(request).directory.schemas(ctx)
    core = {k: v for k, v in doc.items() if k not in _HIDDEN and not k.startswith("urn:")}
    found: list[tuple[str, Any]] = [("Core", core)]
    for key, value in doc.items():
        if key.startswith("urn:") and isinstance(value, dict):
            schema = registry.schema(key)
            found.append((f"{schema.name} ({key})" if schema else key, value))
    return found


@router.get("/directory/users")
def users(
    request: Request,
    ctx: ConsoleContext,
    q: str = "",
    by: str = "userName",
    filter: str = "",
    after: str = "",
    start: str = "",
) -> Response:
    q, scim_filter = q[:MAX_QUERY].strip(), filter[:MAX_FILTER].strip()
    first = number(start, "start", 1, MAX_START)
    by = by if by in SEARCHES else "userName"
    problem = ""
    resources: list[dict[str, Any]] = []
    total, next_id = 0, ""
    try:
        if q and not scim_filter:
            simple, sort_by = simple_filter(q, by)
            resources, total = search_sorted(
                request, ctx, EntityType.USER, simple, sort_by, first, LIST_ATTRIBUTES
            )
        else:
            resources, total, next_id = search(
                request, ctx, EntityType.USER, scim_filter, cursor(after), LIST_ATTRIBUTES
            )
    except InputError as exc:
        problem = exc.message
    rows = [
        {
            "id": r["id"],
            "userName": r.get("userName", ""),
            "name": r.get("displayName") or _formatted(r.get("name")),
            "email": primary_email(r),
            "active": r.get("active"),
        }
        for r in resources
    ]
    return render(
        request,
        "directory/users.html",
        status=400 if problem else 200,
        rows=rows,
        total=total,
        next_id=next_id,
        after=after,
        q=q,
        by=by,
        searches=SEARCHES,
        filter=scim_filter,
        problem=problem,
        sorted=bool(q and not scim_filter),
        start=first,
        limit=PAGE,
        paged_total=min(total, MAX_START + PAGE - 1),
        link=lambda at: url(request, "/directory/users", q=q, by=by, start=at + 1),
    )


def _name_of(doc: dict[str, Any]) -> dict[str, Any]:
    name = doc.get("name")
    return name if isinstance(name, dict) else {}


def _formatted(name: Any) -> str:
    if not isinstance(name, dict):
        return ""
    if isinstance(name.get("formatted"), str):
        return str(name["formatted"])
    parts = (name.get("givenName"), name.get("familyName"))
    return " ".join(p for p in parts if isinstance(p, str))


# -- creating -----------------------------------------------------------------------------------


@router.get("/directory/users/new")
def new_user(request: Request, ctx: ConsoleContext) -> Response:
    offer_change(request)
    return render(request, "directory/user_new.html", values={"active": True}, problem="")


@router.post("/directory/users/new")
def create_user(
    request: Request,
    ctx: ConsoleContext,
    userName: Annotated[str, Form(max_length=1024)] = "",
    givenName: Annotated[str, Form(max_length=1024)] = "",
    familyName: Annotated[str, Form(max_length=1024)] = "",
    displayName: Annotated[str, Form(max_length=1024)] = "",
    email: Annotated[str, Form(max_length=1024)] = "",
    active: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    values = {
        "userName": userName.strip(),
        "givenName": givenName.strip(),
        "familyName": familyName.strip(),
        "displayName": displayName.strip(),
        "email": email.strip(),
        "active": bool(active),
    }
    body: dict[str, Any] = {"schemas": [s.USER], "userName": values["userName"]}
    body["active"] = values["active"]
    name = {k: values[k] for k in ("givenName", "familyName") if values[k]}
    if name:
        body["name"] = name
    if values["displayName"]:
        body["displayName"] = values["displayName"]
    if values["email"]:
        body["emails"] = [{"value": values["email"], "primary": True}]
    try:
        created = services(request).directory.create(ctx, EntityType.USER, body, SCIM_BASE)
    except (InputError, ConflictError) as exc:
        return render(
            request,
            "directory/user_new.html",
            status=status_of(exc),
            values=values,
            problem=exc.message,
        )
    return redirect(
        request, f"/directory/users/{created.id}", notice=f"User {values['userName']} created."
    )


# -- one user -----------------------------------------------------------------------------------


def _user_page(
    request: Request,
    ctx: Context,
    user_id: str,
    *,
    status: int = 200,
    problem: str = "",
    json_problem: str = "",
    values: dict[str, Any] | None = None,
    json_text: str | None = None,
) -> Response:
    doc = read(request, ctx, EntityType.USER, user_id)
    name = _name_of(doc)
    current = {
        "userName": doc.get("userName", ""),
        "givenName": name.get("givenName", ""),
        "familyName": name.get("familyName", ""),
        "displayName": doc.get("displayName", ""),
        "email": primary_email(doc),
        "active": doc.get("active", True),
    }
    return render(
        request,
        "directory/user.html",
        status=status,
        user=doc,
        version=doc.get("meta", {}).get("version", ""),
        sections=sections(request, ctx, doc),
        groups=doc.get("groups", []),
        values=values or current,
        json_text=json_text if json_text is not None else editable(doc),
        problem=problem,
        json_problem=json_problem,
    )


@router.get("/directory/users/{user_id}")
def user(request: Request, ctx: ConsoleContext, user_id: str) -> Response:
    return _user_page(request, ctx, user_id)


@router.post("/directory/users/{user_id}")
def edit_user(
    request: Request,
    ctx: ConsoleContext,
    user_id: str,
    version: Annotated[str, Form(max_length=64)] = "",
    userName: Annotated[str, Form(max_length=1024)] = "",
    givenName: Annotated[str, Form(max_length=1024)] = "",
    familyName: Annotated[str, Form(max_length=1024)] = "",
    displayName: Annotated[str, Form(max_length=1024)] = "",
    email: Annotated[str, Form(max_length=1024)] = "",
    active: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    values = {
        "userName": userName.strip(),
        "givenName": givenName.strip(),
        "familyName": familyName.strip(),
        "displayName": displayName.strip(),
        "email": email.strip(),
        "active": bool(active),
    }
    directory = services(request).directory
    old = read(request, ctx, EntityType.USER, user_id)
    patch = {"schemas": [s.PATCH_OP], "Operations": _operations(old, values)}
    try:
        directory.patch(ctx, EntityType.USER, user_id, patch, SCIM_BASE, if_match=version or None)
    except (InputError, ConflictError) as exc:
        return _user_page(
            request, ctx, user_id, status=status_of(exc), problem=exc.message, values=values
        )
    return redirect(request, f"/directory/users/{user_id}", notice="User saved.")


def _operations(old: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    """PATCH operations that give the user the form's values (an emptied one is removed)."""
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "userName", "value": values["userName"]},
        {"op": "replace", "path": "active", "value": values["active"]},
    ]
    name = _name_of(old)
    for key, path, was in (
        ("givenName", "name.givenName", name.get("givenName")),
        ("familyName", "name.familyName", name.get("familyName")),
        ("displayName", "displayName", old.get("displayName")),
    ):
        if values[key]:
            ops.append({"op": "replace", "path": path, "value": values[key]})
        elif was is not None:
            ops.append({"op": "remove", "path": path})
    before = primary_email(old)
    if values["email"] != before:
        others = [
            e for e in old.get("emails", ()) if isinstance(e, dict) and e.get("value") != before
        ]
        if values["email"]:
            others.insert(0, {"value": values["email"], "primary": True})
        ops.append(
            {"op": "replace", "path": "emails", "value": others}
            if others
            else {"op": "remove", "path": "emails"}
        )
    return ops


@router.post("/directory/users/{user_id}/json")
def replace_user(
    request: Request,
    ctx: ConsoleContext,
    user_id: str,
    document: Annotated[str, Form(max_length=MAX_JSON)],
    version: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        body = parsed_json(document)
        services(request).directory.replace(
            ctx, EntityType.USER, user_id, body, SCIM_BASE, version or None
        )
    except (InputError, ConflictError) as exc:
        return _user_page(
            request,
            ctx,
            user_id,
            status=status_of(exc),
            json_problem=exc.message,
            json_text=document,
        )
    return redirect(request, f"/directory/users/{user_id}", notice="User replaced.")


@router.post("/directory/users/{user_id}/delete")
def delete_user(request: Request, ctx: ConsoleContext, user_id: str) -> Response:
    doc = read(request, ctx, EntityType.USER, user_id)
    services(request).directory.delete(ctx, EntityType.USER, user_id)
    return redirect(request, "/directory/users", notice=f"User {doc.get('userName')} deleted.")


__all__ = ["router"]
