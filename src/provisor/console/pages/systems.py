"""The systems pages: the list, a new system (type, then a form of its properties), a
system's page (facts, properties, links, enable, delete, export, import, test)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.connectors.types import ConnectorType, Kind, PropertySpec
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
from provisor.errors import InputError
from provisor.systems.exchange import export_system, identity_management_csv, import_system
from provisor.systems.model import NewSystem, System, SystemChanges
from provisor.systems.secrets import ALWAYS_SECRET
from provisor.web.tenancy import public_root

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 20
LINKABLE = 100  # systems offered as links on a system's page
MAX_IMPORT_BYTES = 1024 * 1024
PROPERTY = "p."  # form fields of properties: p.<key>
CLEAR = "clear."  # a credential's "remove it" checkbox: clear.<key>
PROXY_PATH = "/ipsproxy/service/api/v1/scim/"

RoleQuery = Annotated[Role | None, Query()]


@dataclass(frozen=True, slots=True)
class Field:
    """One property in a form: its spec (None: a property the type does not know), its value
    as shown (never a credential's), whether it is a credential and whether one is stored."""

    key: str
    spec: PropertySpec | None
    value: str
    credential: bool
    stored: bool = False
    required: bool = False

    @property
    def choices(self) -> tuple[str, ...]:
        if self.spec is None:
            return ()
        if self.spec.kind is Kind.BOOLEAN:
            return ("true", "false")
        return self.spec.choices


def _fields(
    kind: ConnectorType,
    role: Role,
    values: Mapping[str, str],
    credentials: frozenset[str] | set[str] = frozenset(),
) -> list[Field]:
    """The form fields of a system's properties: the type's for the role (the required ones
    first), then the others it has; credentials never carry their value."""
    secret = set(credentials) | kind.credential_keys | ALWAYS_SECRET
    specs = [p for p in kind.properties if role in p.roles]
    specs.sort(key=lambda p: role not in p.required)
    found = [
        Field(
            key=p.key,
            spec=p,
            value="" if p.key in secret else values.get(p.key, ""),
            credential=p.key in secret,
            stored=p.key in credentials,
            required=role in p.required,
        )
        for p in specs
    ]
    known = {p.key for p in specs}
    found.extend(
        Field(
            key=k,
            spec=None,
            value="" if k in secret else v,
            credential=k in secret,
            stored=k in credentials,
        )
        for k, v in sorted(values.items())
        if k not in known
    )
    return found


def _typed(form: FormData) -> dict[str, str]:
    """The properties typed in a form (``p.<key>`` fields), as strings."""
    return {
        k[len(PROPERTY) :]: v.strip()
        for k, v in form.multi_items()
        if k.startswith(PROPERTY) and isinstance(v, str)
    }


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _role(value: str) -> Role | None:
    try:
        return Role(value) if value else None
    except ValueError:
        raise InputError(f"role: one of {', '.join(Role)}, not {value!r}.") from None


def _enabled(value: str) -> bool | None:
    if value in ("", "any"):
        return None
    if value in ("true", "false"):
        return value == "true"
    raise InputError(f"enabled: true or false, not {value!r}.")


# -- the list -------------------------------------------------------------------------------------


@router.get("/systems")
def systems_page(
    request: Request,
    ctx: ConsoleContext,
    role: str = "",
    type: Annotated[str, Query(max_length=100)] = "",
    enabled: str = "",
    q: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    found = services(request).systems
    filters = {"role": role, "type": type, "enabled": enabled, "q": q.strip()}
    systems, total = found.listing(
        ctx,
        role=_role(role),
        type=type or None,
        enabled=_enabled(enabled),
        name=q.strip() or None,
        offset=offset,
        limit=PAGE,
    )

    def link(at: int) -> str:
        return url(request, "/systems", **filters, offset=at or None)

    return render(
        request,
        "systems/list.html",
        systems=systems,
        total=total,
        offset=offset,
        limit=PAGE,
        link=link,
        filters=filters,
        roles=list(Role),
        types=found.connector_types(ctx),
    )


# -- a new system ---------------------------------------------------------------------------------


@router.get("/systems/new")
def new_page(
    request: Request,
    ctx: ConsoleContext,
    role: str = "",
    type: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    offer_change(request)
    chosen = _role(role)
    if chosen is None or not type:
        return _type_page(request, ctx, chosen)
    kind = services(request).systems.connector_type(ctx, type)
    if chosen not in kind.roles:
        raise InputError(f"A {kind.name} system cannot be a {chosen} system.")
    return _new_form(request, ctx, kind, chosen, kind.seeded_properties(chosen))


def _type_page(request: Request, ctx: Context, role: Role | None) -> Response:
    kinds = services(request).systems.connector_types(ctx)
    if role is not None:
        kinds = [k for k in kinds if role in k.roles]
    return render(request, "systems/types.html", role=role, roles=list(Role), kinds=kinds)


def _new_form(
    request: Request,
    ctx: Context,
    kind: ConnectorType,
    role: Role,
    values: Mapping[str, str],
    status: int = 200,
    error: str = "",
    typed: Mapping[str, Any] | None = None,
) -> Response:
    sources: list[System] = []
    if role is Role.TARGET:
        sources, _ = services(request).systems.listing(ctx, role=Role.SOURCE, limit=LINKABLE)
    return render(
        request,
        "systems/new.html",
        status=status,
        kind=kind,
        role=role,
        fields=_fields(kind, role, values),
        sources=sources,
        error=error,
        typed=typed or {"name": "", "description": "", "enabled": True, "sources": []},
    )


@router.post("/systems/new")
async def create(request: Request, ctx: ConsoleContext) -> Response:
    form = await request.form()
    return await run_in_threadpool(_create, request, ctx, form)


def _create(request: Request, ctx: Context, form: FormData) -> Response:
    found = services(request).systems
    role = _role(_text(form, "role"))
    if role is None:
        raise InputError("Choose the system's role.")
    kind = found.connector_type(ctx, _text(form, "type"))
    properties = {k: v for k, v in _typed(form).items() if v}
    typed = {
        "name": _text(form, "name"),
        "description": _text(form, "description"),
        "enabled": form.get("enabled") == "true",
        "sources": [v for v in form.getlist("sources") if isinstance(v, str)],
    }
    try:
        new = NewSystem(
            name=typed["name"],
            type=kind.id,
            role=role,
            description=typed["description"],
            enabled=typed["enabled"],
            properties=properties,
            source_system_ids=typed["sources"],
        )
        system = found.create(ctx, new)
    except (InputError, ValueError) as exc:
        shown = {k: v for k, v in properties.items() if k not in kind.credential_keys}
        message = exc.message if isinstance(exc, InputError) else _validation(exc)
        return _new_form(request, ctx, kind, role, shown, 400, message, typed)
    return redirect(request, f"/systems/{system.id}", notice=f"System {system.name} created.")


def _validation(exc: ValueError) -> str:
    """A pydantic error as one readable line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}".lstrip(": ")
            for e in errors()
        )
    return str(exc)


# -- importing ------------------------------------------------------------------------------------


@router.get("/systems/import")
def import_page(request: Request, ctx: ConsoleContext) -> Response:
    return render(request, "systems/import.html", roles=list(Role), error="", typed={})


@router.post("/systems/import")
async def import_(request: Request, ctx: ConsoleContext) -> Response:
    form = await request.form()
    upload = form.get("file")
    data = b""
    try:
        if isinstance(upload, UploadFile):
            data = await upload.read(MAX_IMPORT_BYTES + 1)
    finally:
        await form.close()
    return await run_in_threadpool(_import, request, ctx, form, data)


def _import(request: Request, ctx: Context, form: FormData, data: bytes) -> Response:
    typed = {"name": _text(form, "name"), "role": _text(form, "role")}
    try:
        if not data:
            raise InputError("Choose an export file (JSON) to import.")
        if len(data) > MAX_IMPORT_BYTES:
            raise InputError(f"An export is at most {MAX_IMPORT_BYTES // 1024} KiB.")
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"The file is not JSON: {exc}.") from None
        imported = import_system(
            ctx,
            services(request).systems,
            document,
            name=typed["name"] or None,
            role=_role(typed["role"]),
        )
    except (InputError, ValueError) as exc:
        message = exc.message if isinstance(exc, InputError) else _validation(exc)
        return render(
            request,
            "systems/import.html",
            status=400,
            roles=list(Role),
            error=message,
            typed=typed,
        )
    system = imported.system
    notice = " ".join([f"System {system.name} imported.", *imported.warnings])
    return redirect(request, f"/systems/{system.id}", notice=notice)


# -- one system -----------------------------------------------------------------------------------


def _scim_url(request: Request, system: System) -> str:
    """The SCIM base URL of a proxy system, as its callers address it."""
    configured = services(request).settings.base_url
    root = public_root(request.scope, configured, str(request.base_url))
    return f"{root}{PROXY_PATH}{system.id}"


def _system_page(
    request: Request,
    ctx: Context,
    system: System,
    status: int = 200,
    error: str = "",
    typed: Mapping[str, str] | None = None,
) -> Response:
    found = services(request).systems
    values = dict(system.properties)
    if typed is not None:
        values.update({k: v for k, v in typed.items() if k not in system.credential_keys})
    linkable: list[System] = []
    if system.role is Role.TARGET:
        linkable, _ = found.listing(ctx, role=Role.SOURCE, limit=LINKABLE)
    elif system.role is Role.SOURCE:
        targets, _ = found.listing(ctx, role=Role.TARGET, limit=LINKABLE)
        linked = {link.id for link in system.target_systems}
        linkable = [t for t in targets if t.id not in linked]
    return render(
        request,
        "systems/show.html",
        status=status,
        system=system,
        fields=_fields(system.type, system.role, values, set(system.credential_keys)),
        linkable=linkable,
        scim_url=_scim_url(request, system) if system.role is Role.PROXY else "",
        error=error,
        subscriptions=(
            services(request).notifications.subscriptions(ctx, system=system.id)
            if system.role is Role.SOURCE
            else []
        ),
    )


@router.get("/systems/{system_id}")
def system_page(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    return _system_page(request, ctx, services(request).systems.show(ctx, system_id))


@router.post("/systems/{system_id}/properties")
async def save_properties(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_save_properties, request, ctx, form, system_id)


def _changes(system: System, form: FormData) -> tuple[dict[str, str | None], dict[str, str]]:
    """What a properties form changes: values set (``None``: removed) and credentials set.
    A credential left empty stays as it is; its "remove" box removes it."""
    changed: dict[str, str | None] = {}
    credentials: dict[str, str] = {}
    secret = set(system.credential_keys) | system.type.credential_keys | ALWAYS_SECRET
    for key, value in _typed(form).items():
        stored = system.properties.get(key)
        if key in secret:
            if value:
                changed[key] = value
            elif form.get(CLEAR + key) and stored is not None:
                changed[key] = None
        elif value != (stored or ""):
            changed[key] = value or None
    new_key = _text(form, "new_key")
    new_value = _text(form, "new_value")
    if new_key:
        if new_key in system.properties or new_key in changed:
            raise InputError(f"{new_key}: the system has this property already; change it above.")
        if form.get("new_credential") == "true":
            credentials[new_key] = new_value
        else:
            changed[new_key] = new_value
    elif new_value:
        raise InputError("A new property needs a name.")
    return changed, credentials


def _version_of(form: FormData) -> int | None:
    text = _text(form, "version")
    return int(text) if text.isdigit() else None


def _save_properties(request: Request, ctx: Context, form: FormData, system_id: str) -> Response:
    found = services(request).systems
    system = found.show(ctx, system_id)
    try:
        changed, credentials = _changes(system, form)
        if not changed and not credentials:
            return redirect(request, f"/systems/{system.id}", notice="Nothing changed.")
        found.update(
            ctx,
            system.id,
            SystemChanges(properties=changed),
            credentials=credentials or None,
            if_match=_version_of(form),
        )
    except InputError as exc:
        return _system_page(request, ctx, system, 400, exc.message, _typed(form))
    return redirect(request, f"/systems/{system.id}", notice="Properties saved.")


@router.post("/systems/{system_id}/details")
async def save_details(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_save_details, request, ctx, form, system_id)


def _save_details(request: Request, ctx: Context, form: FormData, system_id: str) -> Response:
    found = services(request).systems
    system = found.show(ctx, system_id)
    try:
        changes = SystemChanges(name=_text(form, "name"), description=_text(form, "description"))
        system = found.update(ctx, system.id, changes, if_match=_version_of(form))
    except (InputError, ValueError) as exc:
        message = exc.message if isinstance(exc, InputError) else _validation(exc)
        return _system_page(request, ctx, system, 400, message)
    return redirect(request, f"/systems/{system.id}", notice="Saved.")


@router.post("/systems/{system_id}/sources")
async def save_sources(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_save_sources, request, ctx, form, system_id)


def _save_sources(request: Request, ctx: Context, form: FormData, system_id: str) -> Response:
    """A target's source systems: the ones ticked replace the linked ones."""
    found = services(request).systems
    wanted = [v for v in form.getlist("sources") if isinstance(v, str)]
    system = found.update(ctx, system_id, SystemChanges(source_system_ids=wanted))
    return redirect(request, f"/systems/{system.id}", notice="Source systems saved.")


@router.post("/systems/{system_id}/targets")
async def link_target(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_link_target, request, ctx, form, system_id)


def _link_target(request: Request, ctx: Context, form: FormData, system_id: str) -> Response:
    """Link a source to a target (``link``) or unlink it (``unlink``): the target's sources
    change, as the service models links."""
    found = services(request).systems
    source = found.show(ctx, system_id)
    if source.role is not Role.SOURCE:
        raise InputError("Only a source system is linked to targets; a target names its sources.")
    target_id = _text(form, "target")
    if not target_id:
        raise InputError("Choose a target system.")
    target = found.show(ctx, target_id)
    if target.role is not Role.TARGET:
        raise InputError(f"{target.name} is a {target.role} system, not a target.")
    sources = [s for s in target.source_system_ids if s != source.id]
    if _text(form, "action") != "unlink":
        sources.append(source.id)
    found.update(ctx, target.id, SystemChanges(source_system_ids=sources))
    verb = "unlinked from" if _text(form, "action") == "unlink" else "linked to"
    return redirect(request, f"/systems/{source.id}", notice=f"{verb.capitalize()} {target.name}.")


@router.post("/systems/{system_id}/enable")
def enable(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    system = services(request).systems.set_enabled(ctx, system_id, True)
    return redirect(request, f"/systems/{system.id}", notice=f"{system.name} enabled.")


@router.post("/systems/{system_id}/disable")
def disable(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    system = services(request).systems.set_enabled(ctx, system_id, False)
    return redirect(request, f"/systems/{system.id}", notice=f"{system.name} disabled.")


@router.post("/systems/{system_id}/delete")
def delete(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    system = services(request).systems.delete(ctx, system_id)
    return redirect(request, "/systems", notice=f"System {system.name} deleted.")


@router.post("/systems/{system_id}/test")
async def test(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    result = await services(request).systems.test_connection(ctx, system_id)
    if request.headers.get("hx-request"):
        return render(request, "systems/test.html", result=result)
    outcome = "Connection works" if result.ok else "Connection failed"
    return redirect(request, f"/systems/{system_id}", notice=f"{outcome}: {result.message}")


@router.get("/systems/{system_id}/export")
def export(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    found = services(request).systems
    system = found.show(ctx, system_id)
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in system.name)
    if format == "csv":
        root = public_root(
            request.scope, services(request).settings.base_url, str(request.base_url)
        )
        return Response(
            identity_management_csv(system, root),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )
    return Response(
        orjson.dumps(export_system(ctx, found, system.id), option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}.json"'},
    )
