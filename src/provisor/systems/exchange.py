"""Export and import of systems (spec §4.5): JSON, credentials never exported, role kept.

An export holds the system's configuration and its current transformations::

    {"provisorExport": 1, "exported": "...", "name": "HR", "type": "scim",
     "typeName": "SCIM System", "role": "target", "description": "", "enabled": true,
     "properties": {"URL": "https://...", "User": "sync"}, "credentialKeys": ["Password"],
     "sourceSystems": [{"id": "...", "name": "..."}],
     "transformations": {"write": {"user": {...}, "group": {...}}}}

Credential values are left out: after an import they must be entered again. Imports also
take SAP-like exports with ``transformation`` / ``readTransformation`` / ``writeTransformation``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisor import __version__
from provisor.connectors.base import Role
from provisor.connectors.csv.files import formula_safe
from provisor.context import Context
from provisor.errors import InputError, NotFoundError
from provisor.systems.model import KINDS, NewSystem, System
from provisor.systems.secrets import ALWAYS_SECRET
from provisor.systems.service import SystemService, document_of
from provisor.timestamps import now

FORMAT = 1


def export_system(ctx: Context, service: SystemService, id_or_name: str) -> dict[str, Any]:
    """A system as an export (admin)."""
    system = service.show(ctx, id_or_name)
    sources = []
    for source_id in system.source_system_ids:
        try:
            sources.append({"id": source_id, "name": service.get(ctx, source_id).name})
        except NotFoundError:
            continue
    described = configuration_of(ctx, service, system)
    transformations = described.pop("transformations")
    return {
        "provisorExport": FORMAT,
        "product": f"provisor {__version__}",
        "exported": now(),
        **described,
        "sourceSystems": sources,
        "transformations": transformations,
    }


def configuration_of(ctx: Context, service: SystemService, system: System) -> dict[str, Any]:
    """Internal: what an export says of a system besides its links: name, description, type,
    role, enabled, properties without credential values (keys sorted), the credential keys
    (sorted) and the current transformations by kind. The caller authorised the call."""
    # a key that is a credential on every system of the type is left out even if stored
    # plain (as a change could store it before that was fixed): an export carries no secret
    secret = set(system.credential_keys) | (
        (system.type.credential_keys | ALWAYS_SECRET) & set(system.properties)
    )
    return {
        "name": system.name,
        "description": system.description,
        "type": system.type.id,
        "typeName": system.type.name,
        "role": system.role.value,
        "enabled": system.enabled,
        "properties": {
            k: system.properties[k] for k in sorted(system.properties) if k not in secret
        },
        "credentialKeys": sorted(secret),
        "transformations": {
            kind: document_of(service.transformation(ctx, system.id, kind).text)
            for kind in system.kinds
        },
    }


@dataclass(frozen=True, slots=True)
class Imported:
    system: System
    warnings: list[str]


def import_system(
    ctx: Context,
    service: SystemService,
    data: Any,
    *,
    name: str | None = None,
    role: Role | None = None,
) -> Imported:
    """Create a system from an export (admin); ``name`` renames it, ``role`` must match the
    export's."""
    ctx.require(action="import a system")
    if not isinstance(data, dict):
        raise InputError("An export is a JSON object.")
    exported_role = data.get("role")
    try:
        kept = Role(str(exported_role))
    except ValueError:
        has = "has no role" if exported_role is None else f"has the role {exported_role!r}"
        raise InputError(
            f"role: the export {has}; a system export has one of {', '.join(Role)}."
        ) from None
    if role is not None and role is not kept:
        raise InputError(f"A {kept} export cannot be imported as a {role} system.")
    for key in ("type", "name"):
        if not isinstance(data.get(key), str):
            raise InputError(f"{key}: missing from the export.")
    warnings = []
    sources = []
    for source in data.get("sourceSystems") or []:
        if not isinstance(source, dict):
            continue
        found = None
        for ref in (source.get("id"), source.get("name")):
            if isinstance(ref, str):
                try:
                    found = service.get(ctx, ref)
                    break
                except NotFoundError:
                    continue
        if found is not None and found.role is Role.SOURCE:
            sources.append(found.id)
        else:
            warnings.append(
                f"Source system {source.get('name') or source.get('id')!r} does not exist here; "
                "select the source systems again."
            )
    properties = data.get("properties") or {}
    if not isinstance(properties, dict):
        raise InputError("properties: an object of strings.")
    credential_keys = [k for k in data.get("credentialKeys") or [] if isinstance(k, str)]
    for key in credential_keys:
        properties.pop(key, None)  # never taken from a file, even when one carries them
    if credential_keys:
        warnings.append(f"Enter the credentials again: {', '.join(credential_keys)}.")
    new = NewSystem(
        name=name or data["name"],
        type=data["type"],
        role=kept,
        description=data.get("description") or "",
        enabled=bool(data.get("enabled", True)),
        properties={k: v for k, v in properties.items() if v is not None},
        credential_keys=credential_keys,
        source_system_ids=sources,
        transformations=_transformations(data, kept),
    )
    return Imported(service.create(ctx, new), warnings)


def _transformations(data: dict[str, Any], role: Role) -> dict[str, Any]:
    found = dict(data.get("transformations") or {})
    for key, kind in (("readTransformation", "read"), ("writeTransformation", "write")):
        if data.get(key) is not None:
            found.setdefault(kind, data[key])
    if data.get("transformation") is not None and len(KINDS[role]) == 1:
        found.setdefault(KINDS[role][0], data["transformation"])
    return {k: v for k, v in found.items() if k in KINDS[role] and v is not None}


IDM_COLUMNS = (
    "Name,Description,Type,Disabled,TypeQN,AUTH_PASSWORD,AUTH_TYPE,AUTH_USER,CONNECT_TIMEOUT,"
    "CONNECTION_KEEPALIVE,MX_PRIV_GROUPING_ATTRIBUTE,OAUTH_URL,PROXY_HOST,PROXY_PASSWORD,"
    "PROXY_PORT,PROXY_USER,READ_TIMEOUT,SCIM_ASSIGNMENT_METHOD,SCIM_HOST,SCIM_PATH,SCIM_PORT,"
    "SCIM_PROTOCOL,SYSTEM_PRIVILEGE,TRUSTSTORE,TRUSTSTORE_PASSWORD"
).split(",")


def identity_management_csv(system: System, base_url: str) -> str:
    """A proxy system as a SAP Identity Management SCIM repository (spec §4.5): a header
    line and one line of quoted values. ``AUTH_USER``/``AUTH_PASSWORD`` stay empty for the
    administrator to fill in with a technical user's client id and secret. A value that a
    spreadsheet would run as a formula (a name starting with =) gets a leading '."""
    if system.role is not Role.PROXY:
        raise InputError("Only proxy systems export as a SAP Identity Management CSV.")
    url = urlsplit(base_url.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise InputError(f"The base URL {base_url!r} is not an http(s) URL.")
    port = url.port or (443 if url.scheme == "https" else 80)
    values = {
        "Name": system.name,
        "Description": system.description,
        "Type": "SCIM",
        "Disabled": "0" if system.enabled else "1",
        "TypeQN": "com.sap.idm.connector.scim:reptype.SCIM",
        "AUTH_TYPE": "basic",
        "CONNECT_TIMEOUT": "60000",
        "CONNECTION_KEEPALIVE": "60000",
        "READ_TIMEOUT": "60000",
        "SCIM_ASSIGNMENT_METHOD": "PATCH",
        "SCIM_HOST": url.hostname,
        "SCIM_PATH": f"{url.path}/ipsproxy/service/api/v1/scim/{system.id}",
        "SCIM_PORT": str(port),
        "SCIM_PROTOCOL": url.scheme,
        "SYSTEM_PRIVILEGE": f"PRIV:SYSTEM:{system.name}",
    }
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    out.write(",".join(IDM_COLUMNS) + "\n")
    writer.writerow([formula_safe(values.get(column, "")) for column in IDM_COLUMNS])
    return out.getvalue()
