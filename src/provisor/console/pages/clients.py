"""Technical users (clients of the APIs): list, create (the secret shown once), permissions
and description, rotating the secret, inbound certificates, deletion. The same
ClientService and CertificateService operations as ``/api/v1/clients``."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.auth.clients import MAX_DESCRIPTION, Credentials
from provisor.certs.x509 import KEY_TYPES
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    offer_change,
    redirect,
    render,
    services,
)
from provisor.context import INSTALLATION_ONLY, Context, Permission
from provisor.errors import InputError
from provisor.web.admin_certificates import MAX_CERTIFICATE_BYTES

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 50
# A tenant's technical users may hold every permission but the installation's ``operator``.
PERMISSIONS = tuple(p.value for p in Permission if p not in INSTALLATION_ONLY)
DESCRIPTIONS = {
    "manage_users": "SCIM users of the directory",
    "manage_groups": "SCIM groups of the directory",
    "proxy_api": "the proxy systems' SCIM API",
    "realtime_api": "real-time provisioning",
    "tenant_admin_api": "SAP's public job API",
    "view": "read-only administration",
    "admin": "everything",
}
Permissions = Annotated[list[str], Form(max_length=len(PERMISSIONS))]
Days = Annotated[str, Form(max_length=6)]


def _days(value: str) -> int | None:
    """Days from a form's text field: empty for none; InputError otherwise."""
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 36500:
        raise InputError("Days are a whole number from 1 to 36500.")
    return int(value)


def _values(**values: Any) -> dict[str, Any]:
    return {"permissions_known": PERMISSIONS, "descriptions": DESCRIPTIONS, **values}


@router.get("/clients")
def list_clients(
    request: Request,
    ctx: ConsoleContext,
    search: Annotated[str, Query(max_length=255)] = "",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    found, total = services(request).clients.page(ctx, search=search, offset=offset, limit=PAGE)
    return render(
        request,
        "clients/list.html",
        clients=found,
        total=total,
        offset=offset,
        limit=PAGE,
        search=search,
    )


@router.get("/clients/new")
def new_client(request: Request, ctx: ConsoleContext) -> Response:
    offer_change(request)
    return render(request, "clients/new.html", **_values(chosen=[], name="", text=""))


@router.post("/clients/new")
def create_client(
    request: Request,
    ctx: ConsoleContext,
    name: Annotated[str, Form(max_length=300)] = "",
    permission: Permissions = [],  # noqa: B006 (FastAPI copies defaults)
    description: Annotated[str, Form(max_length=MAX_DESCRIPTION + 100)] = "",
    expires_in_days: Days = "",
) -> Response:
    clients = services(request).clients
    try:
        row, creds = clients.create(
            ctx,
            name,
            permission,
            description=description,
            expires_in_days=_days(expires_in_days),
        )
    except InputError as exc:
        values = _values(chosen=permission, name=name, text=description)
        return render(
            request,
            "clients/new.html",
            status=400,
            error=exc.message,
            days=expires_in_days,
            **values,
        )
    return _secret_page(request, ctx, row.id, creds, "created")


def _secret_page(
    request: Request, ctx: Context, client_id: str, creds: Credentials, what: str
) -> Response:
    """The page that shows a new secret, this once (never stored in clear, never again)."""
    view = services(request).clients.show(ctx, client_id)
    return render(request, "clients/secret.html", view=view, creds=creds, what=what)


@router.get("/clients/{client_id}")
def show_client(request: Request, ctx: ConsoleContext, client_id: str) -> Response:
    found = services(request)
    view = found.clients.show(ctx, client_id)
    certificates = found.certificates.inbound(ctx, client=view.client.id)
    return render(
        request,
        "clients/show.html",
        view=view,
        certificates=certificates,
        key_types=KEY_TYPES,
        **_values(chosen=list(view.client.permissions)),
    )


@router.post("/clients/{client_id}/change")
def change_client(
    request: Request,
    ctx: ConsoleContext,
    client_id: str,
    permission: Permissions = [],  # noqa: B006
    description: Annotated[str, Form(max_length=MAX_DESCRIPTION + 100)] = "",
) -> Response:
    found = services(request)
    try:
        row = found.clients.update(ctx, client_id, permissions=permission, description=description)
    except InputError as exc:
        view = found.clients.show(ctx, client_id)
        return render(
            request,
            "clients/show.html",
            status=400,
            error=exc.message,
            view=view,
            certificates=found.certificates.inbound(ctx, client=view.client.id),
            key_types=KEY_TYPES,
            **_values(chosen=permission),
        )
    return redirect(request, f"/clients/{row.id}", notice=f"{row.name} changed.")


@router.post("/clients/{client_id}/rotate")
def rotate_secret(
    request: Request,
    ctx: ConsoleContext,
    client_id: str,
    keep_previous: Annotated[str, Form(max_length=10)] = "",
    expires_in_days: Days = "",
) -> Response:
    row, creds = services(request).clients.rotate_secret(
        ctx,
        client_id,
        keep_previous=bool(keep_previous),
        expires_in_days=_days(expires_in_days),
    )
    return _secret_page(request, ctx, row.id, creds, "rotated")


@router.post("/clients/{client_id}/delete")
def delete_client(request: Request, ctx: ConsoleContext, client_id: str) -> Response:
    row = services(request).clients.delete(ctx, client_id)
    return redirect(request, "/clients", notice=f"Technical user {row.name} deleted.")


@router.post("/clients/{client_id}/certificates")
async def upload_certificate(
    request: Request,
    ctx: ConsoleContext,
    client_id: str,
    certificate: Annotated[UploadFile, File()],
) -> Response:
    data = await certificate.read(MAX_CERTIFICATE_BYTES + 1)
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise InputError(f"A certificate is at most {MAX_CERTIFICATE_BYTES // 1024} KiB.")
    if not data:
        raise InputError("Choose a certificate file (.crt, .pem or .der).")
    certs = services(request).certificates
    cert = await run_in_threadpool(certs.import_inbound, ctx, data, client=client_id)
    return redirect(
        request,
        f"/clients/{client_id}",
        notice=f"Certificate {cert.details.subject} added.",
    )


@router.post("/clients/{client_id}/certificates/generate")
def generate_certificate(
    request: Request,
    ctx: ConsoleContext,
    client_id: str,
    common_name: Annotated[str, Form(max_length=64)] = "",
    key_type: Annotated[str, Form(max_length=16)] = "",
    validity_days: Days = "",
) -> Response:
    """A certificate and its key in a ``.p12`` protected by a generated password: both are
    in this answer only (the file as a download link of the page, nothing kept)."""
    password = secrets.token_urlsafe(12)
    cert, bundle = services(request).certificates.generate_inbound(
        ctx,
        client_id,
        common_name,
        password,
        key_type=key_type or None,
        validity_days=_days(validity_days),
    )
    view = services(request).clients.show(ctx, client_id)
    return render(
        request,
        "clients/generated.html",
        view=view,
        cert=cert,
        password=password,
        bundle=base64.b64encode(bundle).decode(),
    )


@router.post("/clients/{client_id}/certificates/{fingerprint}/delete")
def delete_certificate(
    request: Request, ctx: ConsoleContext, client_id: str, fingerprint: str
) -> Response:
    cert = services(request).certificates.delete_inbound(ctx, fingerprint, client=client_id)
    return redirect(
        request, f"/clients/{client_id}", notice=f"Certificate {cert.details.subject} deleted."
    )
