"""The SCIM System and Identity Authentication connector types and their properties.

Declared as data (spec §2.2, §2.4, §2.5, §9.2); nothing here imports httpx.
"""

from __future__ import annotations

from provisor.connectors.base import Role
from provisor.connectors.types import (
    ALL_ROLES,
    PROXY,
    SOURCE,
    TARGET,
    ConnectorType,
    Kind,
    PropertySpec,
    generic_properties,
    register,
)

S, T = frozenset({SOURCE}), frozenset({TARGET})
SP, TP, ST = S | {PROXY}, T | {PROXY}, S | T
IMPLEMENTATION = "provisor.connectors.scim.connector"
IAS_GROUP_UNIQUE = "['urn:sap:cloud:scim:schemas:extension:custom:2.0:Group']['name']"


def connection_properties() -> tuple[PropertySpec, ...]:
    """How an HTTP system is reached and authenticated (spec §2.2)."""
    return (
        PropertySpec(
            "Type",
            Kind.CHOICE,
            default="HTTP",
            seeded=True,
            choices=("HTTP",),
            description="Protocol of the connector.",
        ),
        PropertySpec(
            "URL",
            Kind.URL,
            required=ALL_ROLES,
            description="Base URL of the service: http(s)://<host>:<port>[/<path>].",
        ),
        PropertySpec(
            "ProxyType",
            Kind.CHOICE,
            default="Internet",
            seeded=True,
            choices=("Internet", "OnPremise"),
            description="Internet, or OnPremise (through SAP Cloud Connector: provisor "
            "connects directly to URL; client certificates are not allowed).",
        ),
        PropertySpec(
            "CloudConnectorLocationId",
            description="SAP Cloud Connector location id (kept for compatibility; unused).",
        ),
        PropertySpec(
            "Authentication",
            Kind.CHOICE,
            default="BasicAuthentication",
            seeded=True,
            choices=(
                "NoAuthentication",
                "BasicAuthentication",
                "ClientCertificateAuthentication",
            ),
            description="How provisor authenticates: none, User/Password (or OAuth 2.0 "
            "with OAuth2TokenServiceURL), or the system's client certificate (mTLS).",
        ),
        PropertySpec("User", description="User name, or OAuth client id with a token URL."),
        PropertySpec(
            "Password",
            Kind.CREDENTIAL,
            description="Password, or OAuth client secret with a token URL.",
        ),
        PropertySpec(
            "OAuth2TokenServiceURL",
            Kind.URL,
            description="Token URL: switches BasicAuthentication to OAuth 2.0 client "
            "credentials (client id User, secret Password).",
        ),
        PropertySpec("OAuth2TokenScope", description="Space-separated scopes to ask for."),
        PropertySpec(
            "AuthType",
            Kind.CHOICE,
            default="Basic",
            choices=("Basic", "Form"),
            description="How the client credentials reach the token service: an HTTP "
            "Basic header, or client_id/client_secret in the form body.",
        ),
        PropertySpec(
            "client_id",
            description="OAuth client id for OAuth with a client certificate "
            "(ClientCertificateAuthentication + OAuth2TokenServiceURL).",
        ),
        PropertySpec(
            "TrustAll",
            Kind.BOOLEAN,
            default="false",
            description="true skips the verification of the server's TLS certificate "
            "(for tests only).",
        ),
    )


def scim_family(
    prefix: str, *, ias: bool = False, defaults: bool = True
) -> tuple[PropertySpec, ...]:
    """The ``<prefix>.*`` behaviour properties of a SCIM-based connector (spec §2.4).

    ``defaults=False`` declares the keys without defaults (the legacy ``scim.*`` keys of an
    Identity Authentication system, which only its API version 1 reads).
    """

    def d(value: str) -> str | None:
        return value if defaults else None

    def spec(
        name: str,
        kind: Kind = Kind.STRING,
        *,
        default: str | None = None,
        seeded: bool = False,
        choices: tuple[str, ...] = (),
        minimum: int | None = None,
        maximum: int | None = None,
        roles: frozenset[Role] = ALL_ROLES,
        description: str = "",
    ) -> PropertySpec:
        return PropertySpec(
            f"{prefix}.{name}",
            kind,
            default=default,
            seeded=seeded,
            choices=choices,
            minimum=minimum,
            maximum=maximum,
            roles=roles,
            description=description,
        )

    group_unique = IAS_GROUP_UNIQUE if ias else "displayName"
    specs = [
        spec(
            "user.filter",
            roles=SP,
            description='SCIM filter of the users read, e.g. userName eq "x" and '
            'addresses.country eq "FR".',
        ),
        spec("group.filter", roles=SP, description="SCIM filter of the groups read."),
        spec(
            "user.unique.attribute",
            default=d("userName"),
            seeded=ias and defaults,
            roles=T,
            description="Attribute(s) finding an existing user when a create conflicts: "
            "userName, emails[0].value, externalId, ... (comma-separated combinations).",
        ),
        spec(
            "group.unique.attribute",
            default=d(group_unique),
            roles=T,
            description="Attribute(s) finding an existing group when a create conflicts.",
        ),
        spec(
            "support.patch.operation",
            Kind.BOOLEAN,
            default=d("false"),
            roles=TP,
            description="true: updates send only what changed (PATCH); false: PUT.",
        ),
        spec(
            "patch.group.members.above.threshold",
            Kind.INTEGER,
            default=d("20000") if ias else None,
            minimum=1,
            maximum=20000 if ias else None,
            roles=T,
            description="Above this many members, member changes are sent as PATCH "
            "batches of this size (at most 50 removals each) instead of one PUT.",
        ),
        spec(
            "patch.group.members.of.nested.groups",
            Kind.BOOLEAN,
            default=d("false"),
            roles=T,
            description="true: only user members are patched; nested groups are kept.",
        ),
        spec(
            "support.bulk.operation",
            Kind.BOOLEAN,
            default=d("false"),
            roles=T,
            description="Create users and groups with SCIM /Bulk requests.",
        ),
        spec(
            "bulk.operations.max.count",
            Kind.INTEGER,
            default=d("20"),
            minimum=1,
            maximum=100,
            roles=T,
            description="Operations per /Bulk request (at most 100).",
        ),
        spec(
            "group.members.paging.enabled",
            Kind.BOOLEAN,
            default=d("false"),
            roles=SP,
            description="Read group members one group at a time (IAS returns at most "
            "20,000 members per group in a list).",
        ),
        spec(
            "user.groups.paging.enabled",
            Kind.BOOLEAN,
            default=d("false"),
            roles=SP,
            description="Read the groups of users one user at a time (IAS returns at most "
            "1,000 groups per user in a list).",
        ),
        spec("group.members.page.size", Kind.INTEGER, minimum=1, roles=SP),
        spec("user.groups.page.size", Kind.INTEGER, minimum=1, roles=SP),
        spec(
            "page.size",
            Kind.INTEGER,
            default=d("100"),
            minimum=1,
            maximum=1000,
            roles=SP,
            description="Resources asked per page of a read (provisor; servers may cap it).",
        ),
        spec(
            "group.prefix",
            roles=ST,
            description="Source: prefix of the names of the groups read; target: only "
            "groups whose displayName starts with it are written.",
        ),
        spec(
            "content.type",
            default=d("application/scim+json"),
            description="Content-Type of request bodies.",
        ),
        spec(
            "schema.discovery",
            Kind.BOOLEAN,
            default=d("false" if ias else "true"),
            roles=T,
            description="true: read the target's /Schemas and /ResourceTypes once per job "
            "and leave out the extensions and attributes it does not declare (reported in "
            "the job's outcome); false: send what the write transformation makes.",
        ),
        spec(
            "include.if.match.wildcard.header",
            Kind.BOOLEAN,
            default=d("false"),
            description="Send If-Match: * with updates and deletions.",
        ),
    ]
    if ias:
        specs += [
            spec(
                "user.automatic.conflict.resolution",
                Kind.BOOLEAN,
                default=d("true"),
                roles=T,
                description="false: a create that conflicts fails (409) instead of "
                "updating the existing user.",
            ),
            spec(
                "user.update.instead.delete",
                Kind.BOOLEAN,
                default=d("false"),
                roles=T,
                description="true: deletions become updates from deleteEntity mappings.",
            ),
        ]
    else:
        specs += [
            spec(
                "api.csrf.protection",
                Kind.CHOICE,
                default=d("disabled"),
                choices=("enabled", "disabled"),
                description="enabled: fetch a CSRF token before writing.",
            ),
            spec(
                "csrf.token.path",
                description="Path appended to URL where the CSRF token is fetched, e.g. "
                "/api/v1/scim/Users?count=1.",
            ),
        ]
    return tuple(specs)


SCIM_SYSTEM = register(
    ConnectorType(
        id="scim",
        name="SCIM System",
        prefix="scim",
        roles=ALL_ROLES,
        implementation=f"{IMPLEMENTATION}:SCIMConnector",
        properties=(
            *connection_properties(),
            *scim_family("scim"),
            PropertySpec(
                "csrf.token.path",
                description="Same as scim.csrf.token.path (older key).",
            ),
            *generic_properties(),
        ),
        description="Any SCIM 2.0 service provider (RFC 7643/7644).",
        aliases=("SCIM",),
    )
)

IDENTITY_AUTHENTICATION = register(
    ConnectorType(
        id="identity-authentication",
        name="Identity Authentication",
        prefix="ias",
        roles=ALL_ROLES,
        implementation=f"{IMPLEMENTATION}:IASConnector",
        properties=(
            *connection_properties(),
            PropertySpec(
                "ias.api.version",
                Kind.CHOICE,
                default="2",
                seeded=True,
                choices=("1", "2"),
                description="2: Identity Directory SCIM API (URL/scim, ias.* properties); "
                "1: legacy IAS SCIM API (URL/service/scim, scim.* properties).",
            ),
            *scim_family("ias", ias=True),
            *scim_family("scim", ias=True, defaults=False),
            PropertySpec(
                "scim.group.members.additional.attributes",
                roles=SP,
                description="API version 1: further member attributes to read "
                "(membersAdditionalAttributes), e.g. emails,userName,displayName.",
            ),
            *generic_properties(),
        ),
        description="SAP Cloud Identity Services - Identity Authentication (Identity "
        "Directory SCIM API, or the legacy IAS SCIM API).",
        aliases=("IAS", "Identity Directory"),
        known_prefixes=("scim",),
        role_seeds=(  # SAP predefines these on Identity Authentication targets (spec §2.5)
            (TARGET, "ips.failed.request.retry.attempts", "2"),
            (TARGET, "ips.failed.request.retry.attempts.interval", "60"),
        ),
    )
)
