"""The admin API of certificates at ``/api/v1`` (permission ``admin``): the tenant CA,
systems' outbound certificates, and inbound certificates of technical users and systems.

Private keys never leave: an outbound certificate downloads as its PEM certificate, and a
generated inbound certificate's key exists only in the ``.p12`` answer of its generation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.certs.service import CertificateService
from provisor.context import Context
from provisor.errors import InputError
from provisor.timestamps import format_datetime
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_CERTIFICATES],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

PEM = "application/x-pem-file"
PEM_FILE: dict[int | str, Any] = {
    200: {"description": "A PEM file", "content": {PEM: {"schema": {"type": "string"}}}}
}
MAX_CERTIFICATE_BYTES = 64 * 1024


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NewCertificate(_Input):
    key_type: str | None = Field(
        None, alias="keyType", description="RSA-2048, RSA-3072, RSA-4096, EC-P256 or EC-P384"
    )
    validity_days: int | None = Field(None, alias="validityDays", ge=1, le=3650)


class AutoRegeneration(_Input):
    enabled: bool


class GeneratedCertificate(NewCertificate):
    common_name: str = Field(alias="commonName", min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024, description="Protects the .p12 file.")


def _certs(services: Any) -> CertificateService:
    found: CertificateService = services.certificates
    return found


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _pem(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type=PEM,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _certificate_body(request: Request) -> bytes | str:
    """The certificate of an upload: the raw body (PEM, DER, pasted text), or JSON
    ``{"certificate": "<PEM text>"}``."""
    raw = await request.body()
    if len(raw) > MAX_CERTIFICATE_BYTES:
        raise InputError(f"A certificate is at most {MAX_CERTIFICATE_BYTES // 1024} KiB.")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"The body is not JSON: {exc}.") from None
        if not isinstance(data, dict) or not isinstance(data.get("certificate"), str):
            raise InputError('Send {"certificate": "<PEM text>"} or the certificate file itself.')
        text: str = data["certificate"]
        return text
    return raw


async def _import(request: Request, services: Any, ctx: Context, **owner: str) -> Response:
    certs = _certs(services)
    data = await _certificate_body(request)
    cert = await run_in_threadpool(certs.import_inbound, ctx, data, **owner)
    return _json(cert.as_json(), 201)


# -- the tenant CA --------------------------------------------------------------------------------


@router.get(
    "/certificates/ca",
    summary="The tenant CA certificate (PEM), created on first need",
    response_class=Response,
    responses=PEM_FILE,
    dependencies=[guard(CertificateService.ca_pem)],
)
def get_ca(services: ServicesDep, ctx: ContextDep) -> Response:
    return _pem(_certs(services).ca_pem(ctx), "provisor-tenant-ca.pem")


# -- outbound -------------------------------------------------------------------------------------


@router.get(
    "/systems/{system_id}/outbound-certificates",
    summary="A system's outbound certificates and automatic regeneration",
    dependencies=[guard(CertificateService.outbound_listing)],
)
def list_outbound(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(_certs(services).outbound_listing(ctx, system_id).as_json())


@router.post(
    "/systems/{system_id}/outbound-certificates",
    status_code=201,
    summary="Generate a certificate (the first is active, the second inactive; at most two)",
    dependencies=[guard(CertificateService.generate_outbound)],
)
def generate_outbound(
    system_id: str,
    services: ServicesDep,
    ctx: ContextDep,
    body: Annotated[NewCertificate | None, Body()] = None,
) -> Response:
    wanted = body or NewCertificate()
    cert = _certs(services).generate_outbound(
        ctx, system_id, key_type=wanted.key_type, validity_days=wanted.validity_days
    )
    return _json(cert.as_json(), 201)


@router.put(
    "/systems/{system_id}/outbound-certificates/auto-regeneration",
    summary="Switch automatic regeneration (14 days before expiry) on or off",
    dependencies=[guard(CertificateService.set_auto_regenerate)],
)
def put_auto_regeneration(
    system_id: str, body: AutoRegeneration, services: ServicesDep, ctx: ContextDep
) -> Response:
    on = _certs(services).set_auto_regenerate(ctx, system_id, body.enabled)
    return _json({"enabled": on})


@router.get(
    "/systems/{system_id}/outbound-certificates/{fingerprint}",
    summary="One outbound certificate's details",
    dependencies=[guard(CertificateService.outbound_certificate)],
)
def get_outbound(
    system_id: str, fingerprint: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    return _json(_certs(services).outbound_certificate(ctx, system_id, fingerprint).as_json())


@router.get(
    "/systems/{system_id}/outbound-certificates/{fingerprint}/download",
    summary="The certificate as PEM (never its key); chain=true appends the tenant CA",
    response_class=Response,
    responses=PEM_FILE,
    dependencies=[guard(CertificateService.download)],
)
def download_outbound(
    system_id: str,
    fingerprint: str,
    services: ServicesDep,
    ctx: ContextDep,
    chain: Annotated[bool, Query()] = False,
) -> Response:
    text = _certs(services).download(ctx, system_id, fingerprint, chain=chain)
    return _pem(text, f"{fingerprint[:16]}.pem")


@router.post(
    "/systems/{system_id}/outbound-certificates/{fingerprint}/activate",
    summary="Make this certificate the active one (the other becomes inactive)",
    dependencies=[guard(CertificateService.activate)],
)
def activate_outbound(
    system_id: str, fingerprint: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    return _json(_certs(services).activate(ctx, system_id, fingerprint).as_json())


@router.delete(
    "/systems/{system_id}/outbound-certificates/{fingerprint}",
    status_code=204,
    summary="Delete an inactive certificate",
    dependencies=[guard(CertificateService.delete_outbound)],
)
def delete_outbound(
    system_id: str, fingerprint: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    _certs(services).delete_outbound(ctx, system_id, fingerprint)
    return Response(status_code=204)


@router.get(
    "/certificates/events",
    summary="Expiry notices (30, 14, 3 days, expired) and renewals, newest first",
    dependencies=[guard(CertificateService.events)],
)
def list_events(
    services: ServicesDep,
    ctx: ContextDep,
    system: Annotated[str | None, Query(description="A system id or name")] = None,
    since: Annotated[str | None, Query(description="ISO 8601 time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    events = _certs(services).events(ctx, system=system, since=since, limit=limit)
    return _json({"events": [e.as_json() for e in events]})


@router.post(
    "/certificates/maintain",
    summary="Rehearse the expiry rules (a dry run, the default) or apply them now with "
    "apply=true (the jobs process applies them every hour)",
    dependencies=[guard(CertificateService.maintain)],
)
def maintain(
    services: ServicesDep,
    ctx: ContextDep,
    at: Annotated[
        datetime | None,
        Query(description="Rehearse them as of this time (UTC unless it says); not with apply"),
    ] = None,
    apply: Annotated[
        bool,
        Query(description="Apply them now: renew certificates and record notices"),
    ] = False,
) -> Response:
    certs = _certs(services)
    moment = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
    if not apply:
        events = certs.rehearse(ctx, moment)
        when = moment or certs.clock()
    elif moment is not None:
        raise InputError(_no_date_to_apply(moment, certs.clock()))
    else:
        when = certs.clock()
        events = certs.maintain(ctx)
    return _json(
        {
            "applied": apply,
            "at": format_datetime(when),
            "events": [e.as_json() for e in events],
        }
    )


def _no_date_to_apply(at: datetime, now: datetime) -> str:
    """Why the expiry rules are not applied as of ``at``: only a rehearsal takes a time."""
    when = f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    either = (
        "rehearse that time without applying (a dry run), or apply the rules now, without a time."
    )
    if at > now:
        return (
            f"Refusing to apply the expiry rules as of {when}, a future time, on a live "
            "tenant: that would issue certificates valid only from then and deactivate the "
            f"valid ones. Instead {either}"
        )
    return f"The expiry rules are applied at the current time only, not as of {when}: {either}"


# -- inbound --------------------------------------------------------------------------------------


@router.get(
    "/inbound-certificates",
    summary="Every inbound certificate",
    dependencies=[guard(CertificateService.inbound)],
)
def list_all_inbound(services: ServicesDep, ctx: ContextDep) -> Response:
    certs = _certs(services)
    return _json({"certificates": [c.as_json() for c in certs.inbound(ctx)]})


@router.delete(
    "/inbound-certificates/{fingerprint}",
    status_code=204,
    summary="Delete (revoke) an inbound certificate, whoever it belongs to",
    dependencies=[guard(CertificateService.delete_inbound)],
)
def delete_inbound(fingerprint: str, services: ServicesDep, ctx: ContextDep) -> Response:
    _certs(services).delete_inbound(ctx, fingerprint)
    return Response(status_code=204)


@router.get(
    "/systems/{system_id}/inbound-certificates",
    summary="Certificates of callers of a source or proxy system",
    dependencies=[guard(CertificateService.inbound)],
)
def list_system_inbound(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    certs = _certs(services)
    return _json({"certificates": [c.as_json() for c in certs.inbound(ctx, system=system_id)]})


@router.post(
    "/systems/{system_id}/inbound-certificates",
    status_code=201,
    summary="Import a caller's certificate (.crt, .pem, .der, or pasted PEM text)",
    dependencies=[guard(CertificateService.import_inbound)],
)
async def import_system_inbound(
    system_id: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    return await _import(request, services, ctx, system=system_id)


@router.delete(
    "/systems/{system_id}/inbound-certificates/{fingerprint}",
    status_code=204,
    summary="Delete (revoke) a caller's certificate",
    dependencies=[guard(CertificateService.delete_inbound)],
)
def delete_system_inbound(
    system_id: str, fingerprint: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    _certs(services).delete_inbound(ctx, fingerprint, system=system_id)
    return Response(status_code=204)


@router.get(
    "/clients/{client_id}/certificates",
    summary="A technical user's certificates",
    dependencies=[guard(CertificateService.inbound)],
)
def list_client_inbound(client_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    certs = _certs(services)
    return _json({"certificates": [c.as_json() for c in certs.inbound(ctx, client=client_id)]})


@router.post(
    "/clients/{client_id}/certificates",
    status_code=201,
    summary="Upload a certificate for a technical user (.crt, .pem, .der, or pasted PEM text)",
    dependencies=[guard(CertificateService.import_inbound)],
)
async def import_client_inbound(
    client_id: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    return await _import(request, services, ctx, client=client_id)


@router.post(
    "/clients/{client_id}/certificates/generate",
    status_code=201,
    summary="Generate a certificate for a technical user: the .p12 (key included) comes "
    "back once, protected by the password",
    response_class=Response,
    responses={201: {"content": {"application/x-pkcs12": {}}}},
    dependencies=[guard(CertificateService.generate_inbound)],
)
def generate_client_inbound(
    client_id: str, body: GeneratedCertificate, services: ServicesDep, ctx: ContextDep
) -> Response:
    cert, bundle = _certs(services).generate_inbound(
        ctx,
        client_id,
        body.common_name,
        body.password,
        key_type=body.key_type,
        validity_days=body.validity_days,
    )
    return Response(
        bundle,
        201,
        media_type="application/x-pkcs12",
        headers={
            "Content-Disposition": f'attachment; filename="{cert.name}.p12"',
            "X-Certificate-Fingerprint": cert.details.fingerprint,
        },
    )


@router.delete(
    "/clients/{client_id}/certificates/{fingerprint}",
    status_code=204,
    summary="Delete (revoke) a technical user's certificate",
    dependencies=[guard(CertificateService.delete_inbound)],
)
def delete_client_inbound(
    client_id: str, fingerprint: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    _certs(services).delete_inbound(ctx, fingerprint, client=client_id)
    return Response(status_code=204)
