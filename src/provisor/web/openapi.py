"""What the OpenAPI document says about responses: error bodies, SCIM resources and tags.

Every router declares its errors here (``errors`` or ``scim_errors``): FastAPI then leaves out
its 422 ``HTTPValidationError`` response, which provisor never sends (a request that fails
validation is answered 400, ``web/errors.py``). The JSON schemas of the SCIM resources are
built from the same attribute definitions that ``/scim/Schemas`` serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from provisor.scim import schemas as s
from provisor.scim.attributes import Attribute, AttrType, Mutability, Schema
from provisor.scim.registry import Registry
from provisor.web.errors import PROBLEM_MEDIA_TYPE, SCIM_MEDIA_TYPE

REF = "#/components/schemas/"
Responses = dict[int | str, dict[str, Any]]  # FastAPI's responses=: status -> response

# -- tags ------------------------------------------------------------------------------------

SCIM_USERS = "SCIM: Users"
SCIM_GROUPS = "SCIM: Groups"
SCIM_SEARCH = "SCIM: search and Bulk"
SCIM_DISCOVERY = "SCIM: discovery and schemas"
PROXY = "Proxy systems"
REALTIME = "Real-time provisioning"
ADMIN_SYSTEMS = "Admin: systems"
ADMIN_JOBS = "Admin: jobs"
ADMIN_SCHEDULES = "Admin: schedules"
ADMIN_CERTIFICATES = "Admin: certificates"
ADMIN_CLIENTS = "Admin: technical users"
ADMIN_ADMINISTRATORS = "Admin: administrators"
ADMIN_REALTIME = "Admin: real-time logs"
ADMIN_CONFIGURATION = "Admin: configuration"
ADMIN_SSO = "Admin: console single sign-on"
ADMIN_NOTIFICATIONS = "Admin: notifications"
TENANT_ADMIN = "Tenant admin API"
HEALTH = "Health"
OAUTH = "OAuth 2.0"
OPERATOR = "Operator"

TAGS: list[dict[str, str]] = [
    {"name": SCIM_USERS, "description": "Users of the Local Identity Directory (RFC 7644)."},
    {"name": SCIM_GROUPS, "description": "Groups of the Local Identity Directory (RFC 7644)."},
    {"name": SCIM_SEARCH, "description": "Searching users and groups together, and Bulk."},
    {"name": SCIM_DISCOVERY, "description": "What the directory supports; custom schemas."},
    {"name": PROXY, "description": "A proxy system's back-end as a SCIM 2.0 service provider."},
    {"name": REALTIME, "description": "Changes pushed by a source system, provisioned at once."},
    {"name": ADMIN_SYSTEMS, "description": "Systems, their properties and transformations."},
    {"name": ADMIN_JOBS, "description": "Provisioning jobs, their logs and settings."},
    {"name": ADMIN_SCHEDULES, "description": "When a source system's job runs."},
    {"name": ADMIN_CERTIFICATES, "description": "Outbound and inbound certificates."},
    {"name": ADMIN_CLIENTS, "description": "Clients of the APIs and their secrets."},
    {"name": ADMIN_ADMINISTRATORS, "description": "The people who use the console."},
    {"name": ADMIN_REALTIME, "description": "What real-time provisioning did."},
    {
        "name": ADMIN_NOTIFICATIONS,
        "description": "Who is told of jobs, certificates and failed sign-ins, and what was sent.",
    },
    {
        "name": ADMIN_CONFIGURATION,
        "description": "The tenant's configuration as one document: export, plan, apply; "
        "bundle templates.",
    },
    {
        "name": ADMIN_SSO,
        "description": "The OpenID Connect provider administrators sign in to the console with.",
    },
    {"name": TENANT_ADMIN, "description": "SAP's public API for jobs (tenant_admin_api)."},
    {
        "name": HEALTH,
        "description": "Whether the process answers (live), can serve (ready: database, "
        "migrations, master key, job runner), and its database works (health).",
    },
    {"name": OAUTH, "description": "Bearer tokens for technical users."},
    {
        "name": OPERATOR,
        "description": "The installation's tenants, managed by its operators (/operator/v1).",
    },
]
TAG_GROUPS: list[dict[str, Any]] = [
    {"name": "SCIM", "tags": [SCIM_USERS, SCIM_GROUPS, SCIM_SEARCH, SCIM_DISCOVERY]},
    {"name": "Proxy", "tags": [PROXY]},
    {"name": "Real-time", "tags": [REALTIME]},
    {
        "name": "Admin",
        "tags": [
            ADMIN_SYSTEMS,
            ADMIN_JOBS,
            ADMIN_SCHEDULES,
            ADMIN_CERTIFICATES,
            ADMIN_CLIENTS,
            ADMIN_ADMINISTRATORS,
            ADMIN_REALTIME,
            ADMIN_CONFIGURATION,
            ADMIN_SSO,
            ADMIN_NOTIFICATIONS,
            TENANT_ADMIN,
        ],
    },
    {"name": "Health", "tags": [HEALTH]},
    {"name": "OAuth", "tags": [OAUTH]},
    {"name": "Operator", "tags": [OPERATOR]},
]

# -- responses -------------------------------------------------------------------------------

_ERRORS: dict[int | str, str] = {
    400: "The request is invalid: the detail says what is wrong and where (a body field, a "
    "query, path or header parameter, a line and column of JSON)",
    401: "No credentials, or wrong ones",
    403: "The caller lacks the permission this operation needs: the detail names the "
    "permissions that would allow it",
    "default": "Any other error (404, 405, 409, 412, 413, 415, 429, 500, 503, ...)",
}


def _error_responses(media_type: str, component: str) -> Responses:
    content = {media_type: {"schema": {"$ref": REF + component}}}
    return {status: {"description": text, "content": content} for status, text in _ERRORS.items()}


def scim_content(component: str, description: str = "Success") -> dict[str, Any]:
    """A SCIM response whose body is the schema ``component``."""
    return {
        "description": description,
        "content": {SCIM_MEDIA_TYPE: {"schema": {"$ref": REF + component}}},
    }


# The error responses of the admin APIs (RFC 7807) and of the SCIM APIs (RFC 7644 §3.12).
errors = _error_responses(PROBLEM_MEDIA_TYPE, "Problem")
scim_errors = _error_responses(SCIM_MEDIA_TYPE, "ScimError")

# -- JSON schemas ----------------------------------------------------------------------------

_TYPES = {
    AttrType.STRING: {"type": "string"},
    AttrType.BOOLEAN: {"type": "boolean"},
    AttrType.DECIMAL: {"type": "number"},
    AttrType.INTEGER: {"type": "integer"},
    AttrType.DATETIME: {"type": "string", "format": "date-time"},
    AttrType.REFERENCE: {"type": "string"},
    AttrType.BINARY: {"type": "string", "contentEncoding": "base64"},
}
_STRINGS = {"type": "array", "items": {"type": "string"}}


def attribute_schema(attribute: Attribute) -> dict[str, Any]:
    """The JSON schema of one attribute's value as the server returns it."""
    if attribute.is_complex:
        value: dict[str, Any] = _object(attribute.sub_attributes)
    else:
        value = dict(_TYPES[attribute.type])
    if attribute.multi_valued:
        value = {"type": "array", "items": value}
    value["description"] = attribute.description
    if attribute.mutability is Mutability.READ_ONLY:
        value["readOnly"] = True
    if attribute.mutability is Mutability.WRITE_ONLY:
        value["writeOnly"] = True  # the password: never returned
    return value


def _object(
    attributes: tuple[Attribute, ...], properties: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """An object of these attributes (after ``properties``); others are allowed: custom
    schemas, attributes a proxy's back-end adds."""
    described = {a.name: attribute_schema(a) for a in attributes}
    return {"type": "object", **extra, "properties": {**(properties or {}), **described}}


def resource_schema(schema: Schema, extensions: tuple[Schema, ...]) -> dict[str, Any]:
    """A resource of the core ``schema`` with its ``extensions`` (RFC 7643 §3)."""
    common = {a.name: attribute_schema(a) for a in (s.ID, s.EXTERNAL_ID, s.META)}
    return _object(
        schema.attributes,
        description=schema.description,
        required=["schemas", "id"],
        properties={
            "schemas": _STRINGS,
            **common,
            **{ext.id: _object(ext.attributes, description=ext.name) for ext in extensions},
        },
    )


def list_schema(item: dict[str, Any]) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2) of ``item``; startId/nextId are SAP's cursor."""
    return {
        "type": "object",
        "required": ["schemas", "totalResults"],
        "properties": {
            "schemas": _STRINGS,
            "totalResults": {"type": "integer", "minimum": 0},
            "itemsPerPage": {"type": "integer", "minimum": 0},
            "startIndex": {"type": "integer", "minimum": 1},
            "startId": {"type": "string"},
            "nextId": {"type": "string"},
            "Resources": {"type": "array", "items": item},
        },
    }


def _ref(component: str) -> dict[str, str]:
    return {"$ref": REF + component}


def _supported(**more: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["supported"],
        "properties": {"supported": {"type": "boolean"}, **more},
    }


_INTEGER = {"type": "integer"}
_STRING = {"type": "string"}
_META = attribute_schema(s.META)

SERVICE_PROVIDER_CONFIG = {
    "type": "object",
    "required": ["schemas", "patch", "bulk", "filter", "changePassword", "sort", "etag"],
    "properties": {
        "schemas": _STRINGS,
        "documentationUri": _STRING,
        "patch": _supported(),
        "bulk": _supported(maxOperations=_INTEGER, maxPayloadSize=_INTEGER),
        "filter": _supported(maxResults=_INTEGER),
        "changePassword": _supported(),
        "sort": _supported(),
        "etag": _supported(),
        "authenticationSchemes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "name", "description"],
                "properties": {
                    "type": _STRING,
                    "name": _STRING,
                    "description": _STRING,
                    "specUri": _STRING,
                    "documentationUri": _STRING,
                    "primary": {"type": "boolean"},
                },
            },
        },
        "meta": _META,
    },
}
RESOURCE_TYPE = {
    "type": "object",
    "required": ["schemas", "name", "endpoint", "schema"],
    "properties": {
        "schemas": _STRINGS,
        "id": _STRING,
        "name": _STRING,
        "endpoint": _STRING,
        "description": _STRING,
        "schema": _STRING,
        "schemaExtensions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["schema", "required"],
                "properties": {"schema": _STRING, "required": {"type": "boolean"}},
            },
        },
        "meta": _META,
    },
}
SCHEMA_ATTRIBUTE = {
    "type": "object",
    "required": ["name", "type", "multiValued", "description", "required"],
    "properties": {
        "name": _STRING,
        "type": {"enum": [t.value for t in AttrType]},
        "multiValued": {"type": "boolean"},
        "description": _STRING,
        "required": {"type": "boolean"},
        "caseExact": {"type": "boolean"},
        "canonicalValues": _STRINGS,
        "referenceTypes": _STRINGS,
        "mutability": _STRING,
        "returned": _STRING,
        "uniqueness": _STRING,
        "subAttributes": {"type": "array", "items": _ref("SchemaAttribute")},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["schemas", "id", "attributes"],
    "properties": {
        "schemas": _STRINGS,
        "id": _STRING,
        "name": _STRING,
        "description": _STRING,
        "attributes": {"type": "array", "items": _ref("SchemaAttribute")},
        "meta": _META,
    },
}
SCIM_ERROR = {
    "type": "object",
    "description": "A SCIM error (RFC 7644 §3.12)",
    "required": ["schemas", "status"],
    "properties": {
        "schemas": _STRINGS,
        "status": {"type": "string", "pattern": "^[1-5][0-9][0-9]$"},
        "scimType": _STRING,
        "detail": _STRING,
    },
}
PROBLEM = {
    "type": "object",
    "description": "A problem (RFC 7807); the problems of an invalid request or "
    "transformation are also listed one by one",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": _STRING,
        "title": _STRING,
        "status": _INTEGER,
        "detail": _STRING,
        "problems": _STRINGS,
    },
}
BULK_RESPONSE = {
    "type": "object",
    "required": ["schemas", "Operations"],
    "properties": {
        "schemas": _STRINGS,
        "Operations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["method", "status"],
                "properties": {
                    "method": _STRING,
                    "bulkId": _STRING,
                    "version": _STRING,
                    "location": _STRING,
                    "status": _STRING,
                    "response": {"type": "object"},
                },
            },
        },
    },
}
PROXY_RESOURCE = {
    "type": "object",
    "description": "A user or group as the proxy read transformation makes it",
    "required": ["schemas", "id"],
    "properties": {"schemas": _STRINGS, "id": _STRING, "meta": _META},
}

REALTIME_LOG = {
    "type": "object",
    "description": "What real-time provisioning did with one change, in each target system",
    "required": ["id", "status"],
    "properties": {"id": _STRING, "status": _STRING, "systems": {"type": "array"}},
}


def components() -> dict[str, dict[str, Any]]:
    """The schemas the SCIM responses refer to, from the built-in resource types."""
    registry = Registry()
    user, group = (resource_schema(rt.schema, rt.extensions) for rt in registry.resource_types)
    return {
        "User": user,
        "Group": group,
        "UserList": list_schema(_ref("User")),
        "GroupList": list_schema(_ref("Group")),
        "ResourceList": list_schema({"anyOf": [_ref("User"), _ref("Group")]}),
        "BulkResponse": BULK_RESPONSE,
        "ServiceProviderConfig": SERVICE_PROVIDER_CONFIG,
        "ResourceType": RESOURCE_TYPE,
        "ResourceTypeList": list_schema(_ref("ResourceType")),
        "Schema": SCHEMA,
        "SchemaAttribute": SCHEMA_ATTRIBUTE,
        "SchemaList": list_schema(_ref("Schema")),
        "ProxyResource": PROXY_RESOURCE,
        "ProxyResourceList": list_schema(_ref("ProxyResource")),
        "RealtimeLog": REALTIME_LOG,
        "ScimError": SCIM_ERROR,
        "Problem": PROBLEM,
    }


def install(app: FastAPI) -> None:
    """Add the SCIM schemas and the tag groups to the document FastAPI generates."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def document() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        doc = generate()
        if fresh:
            doc.setdefault("components", {}).setdefault("schemas", {}).update(components())
            doc["x-tagGroups"] = TAG_GROUPS
        return doc

    app.openapi = document  # type: ignore[method-assign]
