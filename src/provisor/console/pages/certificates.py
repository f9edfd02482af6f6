"""The certificates pages: the tenant's overview (its CA, systems' outbound certificates,
inbound certificates, expiry notices) and a system's certificates (outbound: generate,
activate, download, delete, automatic regeneration; inbound: upload, generate a ``.p12``,
delete).

:func:`read_certificate` and :func:`p12_page` serve any owner of inbound certificates (the
technical users' page too), with the templates ``certificates/macros.html`` and
``certificates/p12.html``.
"""

from __future__ import annotations

import base64
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from provisor.certs.service import CertificateService, InboundCertificate
from provisor.connectors.base import Role
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    redirect,
    render,
    services,
    url,
)
from provisor.context import Context
from provisor.errors import InputError

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

SYSTEMS_PAGE = 10  # systems (with their two outbound slots each) per page of the overview
INBOUND_PAGE = 20
EVENTS = 10
MAX_CERTIFICATE_BYTES = 64 * 1024
KEY_TYPES = ("RSA-2048", "RSA-3072", "RSA-4096", "EC-P256", "EC-P384")
PEM = "application/x-pem-file"
INBOUND_ROLES = (Role.SOURCE, Role.PROXY)


def _certs(request: Request) -> CertificateService:
    found: CertificateService = services(request).certificates
    return found


def _pem(text: str, filename: str) -> Response:
    return Response(
        text, media_type=PEM, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


# -- shared with other owners of inbound certificates ---------------------------------------------


async def read_certificate(form: FormData) -> bytes | str:
    """The certificate of an upload form: its file (``file``: .crt, .pem, .der) or its pasted
    PEM text (``text``); InputError when there is none or it is too big. Closes the form."""
    try:
        upload = form.get("file")
        data: bytes | str = b""
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(MAX_CERTIFICATE_BYTES + 1)
        pasted = form.get("text")
        if not data and isinstance(pasted, str):
            data = pasted.strip()
    finally:
        await form.close()
    if not data:
        raise InputError("Choose a certificate file (.crt, .pem, .der) or paste its PEM text.")
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise InputError(f"A certificate is at most {MAX_CERTIFICATE_BYTES // 1024} KiB.")
    return data


def new_password() -> str:
    """A password for a generated ``.p12`` file, shown once."""
    return secrets.token_urlsafe(18)


def p12_page(
    request: Request, cert: InboundCertificate, bundle: bytes, password: str, back: str
) -> Response:
    """The one page showing a generated certificate's ``.p12`` file (to download) and its
    password: neither is kept, so it is never shown again. ``back``: the owner's page."""
    href = "data:application/x-pkcs12;base64," + base64.b64encode(bundle).decode()
    return render(
        request,
        "certificates/p12.html",
        status=201,
        cert=cert,
        href=href,
        filename=f"{cert.name}.p12",
        password=password,
        back=back,
    )


# -- the overview ---------------------------------------------------------------------------------


@router.get("/certificates")
def overview(
    request: Request,
    ctx: ConsoleContext,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    inbound: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    certs = _certs(request)
    outbound, total = certs.outbound_listings(ctx, offset=offset, limit=SYSTEMS_PAGE)
    callers, callers_total = certs.inbound_page(ctx, offset=inbound, limit=INBOUND_PAGE)

    def systems_link(at: int) -> str:
        return url(request, "/certificates", offset=at or None, inbound=inbound or None)

    def inbound_link(at: int) -> str:
        return url(request, "/certificates", offset=offset or None, inbound=at or None)

    return render(
        request,
        "certificates/overview.html",
        outbound=outbound,
        offset=offset,
        total=total,
        limit=SYSTEMS_PAGE,
        systems_link=systems_link,
        callers=callers,
        inbound=inbound,
        callers_total=callers_total,
        inbound_limit=INBOUND_PAGE,
        inbound_link=inbound_link,
        events=certs.events(ctx, limit=EVENTS),
    )


@router.get("/certificates/ca")
def tenant_ca(request: Request, ctx: ConsoleContext) -> Response:
    return _pem(_certs(request).ca_pem(ctx), "provisor-tenant-ca.pem")


# -- a system's certificates ----------------------------------------------------------------------


def _system_page(
    request: Request,
    ctx: Context,
    system_id: str,
    status: int = 200,
    error: str = "",
    offset: int = 0,
) -> Response:
    certs = _certs(request)
    listing = certs.outbound_listing(ctx, system_id)
    system = services(request).systems.show(ctx, listing.system_id)
    callers: list[InboundCertificate] = []
    callers_total = 0
    if system.role in INBOUND_ROLES:
        callers, callers_total = certs.inbound_page(
            ctx, system=system.id, offset=offset, limit=INBOUND_PAGE
        )

    def inbound_link(at: int) -> str:
        return url(request, f"/systems/{system.id}/certificates", inbound=at or None)

    return render(
        request,
        "certificates/system.html",
        status=status,
        error=error,
        system=system,
        listing=listing,
        key_types=KEY_TYPES,
        inbound_allowed=system.role in INBOUND_ROLES,
        callers=callers,
        inbound=offset,
        callers_total=callers_total,
        inbound_limit=INBOUND_PAGE,
        inbound_link=inbound_link,
    )


@router.get("/systems/{system_id}/certificates")
def system_certificates(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    inbound: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    return _system_page(request, ctx, system_id, offset=inbound)


def _back(request: Request, system_id: str, notice: str) -> Response:
    return redirect(request, f"/systems/{system_id}/certificates", notice=notice)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _days(form: FormData) -> int | None:
    text = _text(form, "validity_days")
    if not text:
        return None
    if not text.isdigit():
        raise InputError(f"Validity: a number of days, not {text!r}.")
    return int(text)


@router.post("/systems/{system_id}/certificates/outbound")
async def generate_outbound(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_generate_outbound, request, ctx, form, system_id)


def _generate_outbound(request: Request, ctx: Context, form: FormData, system_id: str) -> Response:
    try:
        cert = _certs(request).generate_outbound(
            ctx,
            system_id,
            key_type=_text(form, "key_type") or None,
            validity_days=_days(form),
        )
    except InputError as exc:
        return _system_page(request, ctx, system_id, 400, exc.message)
    state = "active" if cert.active else "inactive"
    return _back(
        request, cert.system_id, f"Certificate {cert.details.fingerprint} generated ({state})."
    )


@router.post("/systems/{system_id}/certificates/outbound/{fingerprint}/activate")
def activate(request: Request, ctx: ConsoleContext, system_id: str, fingerprint: str) -> Response:
    cert = _certs(request).activate(ctx, system_id, fingerprint)
    return _back(request, cert.system_id, f"Certificate {cert.details.fingerprint} is active.")


@router.post("/systems/{system_id}/certificates/outbound/{fingerprint}/delete")
def delete_outbound(
    request: Request, ctx: ConsoleContext, system_id: str, fingerprint: str
) -> Response:
    cert = _certs(request).delete_outbound(ctx, system_id, fingerprint)
    return _back(request, cert.system_id, f"Certificate {cert.details.fingerprint} deleted.")


@router.get("/systems/{system_id}/certificates/outbound/{fingerprint}/download")
def download(
    request: Request,
    ctx: ConsoleContext,
    system_id: str,
    fingerprint: str,
    chain: bool = False,
) -> Response:
    text = _certs(request).download(ctx, system_id, fingerprint, chain=chain)
    return _pem(text, f"{fingerprint[:16]}{'-chain' if chain else ''}.pem")


@router.post("/systems/{system_id}/certificates/auto-regeneration")
async def auto_regeneration(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    form = await request.form()
    on = form.get("enabled") == "true"
    await run_in_threadpool(_certs(request).set_auto_regenerate, ctx, system_id, on)
    notice = "Automatic regeneration is " + ("on." if on else "off.")
    return _back(request, system_id, notice)


@router.post("/systems/{system_id}/certificates/inbound")
async def upload_inbound(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    form = await request.form()
    try:
        data = await read_certificate(form)
        cert = await run_in_threadpool(
            lambda: _certs(request).import_inbound(ctx, data, system=system_id)
        )
    except InputError as exc:
        return await run_in_threadpool(_system_page, request, ctx, system_id, 400, exc.message)
    return _back(request, system_id, f"Certificate {cert.details.fingerprint} attached.")


@router.post("/systems/{system_id}/certificates/inbound/generate")
async def generate_inbound(request: Request, ctx: ConsoleContext, system_id: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_generate_inbound, request, ctx, form, system_id)


def _generate_inbound(request: Request, ctx: Context, form: FormData, system_id: str) -> Response:
    password = new_password()
    try:
        cert, bundle = _certs(request).generate_inbound(
            ctx,
            None,
            _text(form, "common_name"),
            password,
            system=system_id,
            key_type=_text(form, "key_type") or None,
            validity_days=_days(form),
        )
    except InputError as exc:
        return _system_page(request, ctx, system_id, 400, exc.message)
    back = url(request, f"/systems/{cert.system_id}/certificates")
    return p12_page(request, cert, bundle, password, back)


@router.post("/systems/{system_id}/certificates/inbound/{fingerprint}/delete")
def delete_inbound(
    request: Request, ctx: ConsoleContext, system_id: str, fingerprint: str
) -> Response:
    cert = _certs(request).delete_inbound(ctx, fingerprint, system=system_id)
    return _back(request, system_id, f"Certificate {cert.details.fingerprint} deleted and revoked.")
