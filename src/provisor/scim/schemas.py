"""The built-in schemas of the Local Identity Directory (RFC 7643 and SAP extensions)."""

from __future__ import annotations

from typing import Any

import scim2_models

from provisor.scim.attributes import (
    Attribute,
    AttrType,
    Mutability,
    Returned,
    Schema,
    Uniqueness,
    boolean,
    complex_,
    datetime_,
    integer,
    multi,
    reference,
    string,
)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SAP_USER = "urn:ietf:params:scim:schemas:extension:sap:2.0:User"
SAP_CUSTOM_USER = "urn:sap:cloud:scim:schemas:extension:custom:2.0:User"
SAP_GROUP = "urn:ietf:params:scim:schemas:extension:sap:2.0:Group"
SAP_CUSTOM_GROUP = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Group"

SCIM1_PREFIX = "urn:scim:schemas:"  # SCIM 1.0/1.1 URNs, refused with invalidVers
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


def authentication_schemes(basic_user: str) -> list[dict[str, object]]:
    """ServiceProviderConfig's authenticationSchemes: bearer tokens and HTTP Basic (the
    client id and secret of ``basic_user``)."""
    return [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token from POST /oauth2/token (client credentials).",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": True,
        },
        {
            "type": "httpbasic",
            "name": "HTTP Basic",
            "description": f"The client id and secret of {basic_user}.",
            "specUri": "https://www.rfc-editor.org/info/rfc7617",
            "primary": False,
        },
    ]


def rfc_descriptions(model: Any, corrections: dict[str, str] | None = None) -> dict[str, str]:
    """The RFC 7643 §8.7.1 descriptions of a scim2-models resource or extension, by attribute
    path (``name``, ``name.subName``); ``corrections`` replace the few that scim2-models words
    generically."""
    out: dict[str, str] = {}

    def walk(attributes: Any, prefix: str) -> None:
        for attribute in attributes or ():
            path = prefix + attribute.name
            out[path] = " ".join((attribute.description or "").split())
            walk(attribute.sub_attributes, path + ".")

    walk(model.to_schema().attributes, "")
    out.update(corrections or {})
    return out


RO = Mutability.READ_ONLY
IMMUTABLE = Mutability.IMMUTABLE

# Common attributes (RFC 7643 §3.1), held by every resource outside of any schema.
ID = string(
    "id", case_exact=True, mutability=RO, returned=Returned.ALWAYS, uniqueness=Uniqueness.SERVER
)
EXTERNAL_ID = string("externalId", case_exact=True)
META = complex_(
    "meta",
    string("resourceType", case_exact=True, mutability=RO),
    datetime_("created", mutability=RO),
    datetime_("lastModified", mutability=RO),
    reference("location", ["uri"], case_exact=True, mutability=RO),
    string("version", case_exact=True, mutability=RO),
    mutability=RO,
)
COMMON = {attr.name.lower(): attr for attr in (ID, EXTERNAL_ID, META)}


def _value_list(name: str, types: tuple[str, ...], value: Attribute | None = None) -> Attribute:
    """The value/display/type/primary shape of emails, phoneNumbers, ims, photos, ..."""
    return multi(
        name,
        value or string("value"),
        string("display"),
        string("type", canonical_values=types),
        boolean("primary"),
    )


CORE_USER = Schema(
    id=USER,
    name="User",
    description="User Account",
    attributes=(
        string("userName", required=True, uniqueness=Uniqueness.SERVER),
        complex_(
            "name",
            string("formatted"),
            string("familyName"),
            string("givenName"),
            string("middleName"),
            string("honorificPrefix"),
            string("honorificSuffix"),
        ),
        string("displayName"),
        string("nickName"),
        reference("profileUrl", ["external"]),
        string("title"),
        string("userType"),
        string("preferredLanguage"),
        string("locale"),
        string("timezone"),
        boolean("active"),
        string(
            "password",
            case_exact=True,
            mutability=Mutability.WRITE_ONLY,
            returned=Returned.NEVER,
        ),
        _value_list("emails", ("work", "home", "other")),
        _value_list("phoneNumbers", ("work", "home", "mobile", "fax", "pager", "other")),
        _value_list("ims", ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
        _value_list(
            "photos", ("photo", "thumbnail"), reference("value", ["external"], case_exact=True)
        ),
        multi(
            "addresses",
            string("formatted"),
            string("streetAddress"),
            string("locality"),
            string("region"),
            string("postalCode"),
            string("country"),
            string("type", canonical_values=("work", "home", "other")),
            boolean("primary"),
        ),
        multi(
            "groups",
            string("value", mutability=RO),
            reference("$ref", ["User", "Group"], mutability=RO),
            string("display", mutability=RO),
            string("type", canonical_values=("direct", "indirect"), mutability=RO),
            mutability=RO,
        ),
        _value_list("entitlements", ()),
        _value_list("roles", ()),
        _value_list("x509Certificates", (), Attribute(name="value", type=AttrType.BINARY)),
    ),
).described(
    rfc_descriptions(
        scim2_models.User,
        {"groups.$ref": "The URI of the corresponding 'Group' resource to which the user belongs."},
    )
)

ENTERPRISE = Schema(
    id=ENTERPRISE_USER,
    name="EnterpriseUser",
    description="Enterprise User",
    attributes=(
        string("employeeNumber"),
        string("costCenter"),
        string("organization"),
        string("division"),
        string("department"),
        complex_(
            "manager",
            string("value"),
            reference("$ref", ["User"]),
            string("displayName", mutability=RO),
        ),
    ),
).described(rfc_descriptions(scim2_models.EnterpriseUser))

SAP_USER_EXTENSION = Schema(
    id=SAP_USER,
    name="SAP User Extension",
    description="SAP Cloud Identity Services user attributes",
    attributes=(
        string(
            "userId",
            mutability=RO,
            description="The user's short identifier in the identity service (such as P000123).",
        ),
        string(
            "userUuid",
            case_exact=True,
            mutability=RO,
            uniqueness=Uniqueness.SERVER,
            description="The global user id: one UUID for the user across SAP systems.",
        ),
        multi(
            "emails",
            string("value", description="An e-mail address of the user."),
            boolean("verified", description="Whether the user has verified this address."),
            boolean("primary", description="Whether this is the user's primary address."),
            description="The user's e-mail addresses with their verification state.",
        ),
        boolean(
            "sendMail",
            description="Whether the user is sent an activation e-mail on creation.",
        ),
        boolean(
            "mailVerified",
            description="Whether the user's e-mail address counts as verified.",
        ),
        complex_(
            "passwordDetails",
            string(
                "status",
                canonical_values=("initial", "enabled", "disabled"),
                description="The password's status: initial (to be changed at the next logon), "
                "enabled or disabled.",
            ),
            datetime_("setTime", mutability=RO, description="When the password was last set."),
            description="The state of the user's password.",
        ),
        # Strings, not dateTime: SAP clients send ISO 8601 timestamps and compare them as text;
        # a typed dateTime would also make scim2-tester fail (it cannot generate one).
        string(
            "validFrom",
            case_exact=True,
            description="When the user account becomes valid (ISO 8601 timestamp).",
        ),
        string(
            "validTo",
            case_exact=True,
            description="When the user account stops being valid (ISO 8601 timestamp).",
        ),
        integer(
            "sourceSystem",
            description="The code of the kind of system the user came from (Identity "
            "Provisioning writes 39).",
        ),
        string("sourceSystemId", description="The user's identifier in the system it came from."),
        string(
            "status",
            canonical_values=("active", "inactive", "new"),
            description="The user account's status: active, inactive or new.",
        ),
        string("applicationId", description="The id of the application the user registered with."),
        multi(
            "corporateGroups",
            string("value", description="The name of a corporate group."),
            description="The user's groups in the corporate identity provider.",
        ),
        reference(
            "targetUrl",
            ["external"],
            description="Where the user is sent after activating the account.",
        ),
        string(
            "emailTemplateSetId",
            description="The set of e-mail templates for the messages the user is sent.",
        ),
        boolean(
            "totpEnabled",
            description="Whether the user may log on with time-based one-time passwords.",
        ),
        boolean(
            "webAuthEnabled",
            description="Whether the user may log on with WebAuthn devices.",
        ),
        boolean(
            "mfaEnabled",
            description="Whether multi-factor authentication is enabled for the user.",
        ),
        datetime_("loginTime", mutability=RO, description="When the user last logged on."),
        datetime_(
            "passwordLoginTime",
            mutability=RO,
            description="When the user last logged on with a password.",
        ),
    ),
)

SAP_CUSTOM_USER_EXTENSION = Schema(
    id=SAP_CUSTOM_USER,
    name="SAP Custom User Attributes",
    description="Up to ten customer-specific attributes",
    attributes=(
        multi(
            "attributes",
            string(
                "name",
                canonical_values=tuple(f"customAttribute{i}" for i in range(1, 11)),
                description="The custom attribute's name: customAttribute1 to customAttribute10.",
            ),
            string("value", description="The custom attribute's value."),
            description="The customer-specific attributes of the user (at most ten).",
        ),
        string("userId", description="The user's identifier in the system it came from."),
    ),
)

CORE_GROUP = Schema(
    id=GROUP,
    name="Group",
    description="Group",
    attributes=(
        string("displayName", required=True),
        multi(
            "members",
            string("value", mutability=IMMUTABLE),
            reference("$ref", ["User", "Group"], mutability=IMMUTABLE),
            string("display", mutability=IMMUTABLE),
            string("type", canonical_values=("User", "Group"), mutability=IMMUTABLE),
        ),
    ),
).described(
    rfc_descriptions(
        scim2_models.Group,
        {
            "members.$ref": "The URI corresponding to a SCIM resource that is a member of "
            "this Group.",
            "members.display": "A human-readable name for the member, primarily used for "
            "display purposes.",
        },
    )
)

SAP_CUSTOM_GROUP_EXTENSION = Schema(
    id=SAP_CUSTOM_GROUP,
    name="SAP Custom Group Attributes",
    description="Technical name and description of a group",
    attributes=(
        string(
            "name",
            uniqueness=Uniqueness.SERVER,
            description="The group's technical name, unique in the tenant.",
        ),
        string("description", description="What the group is for."),
        string("additionalId", description="A further identifier of the group, set by its owner."),
    ),
)

SAP_GROUP_EXTENSION = Schema(
    id=SAP_GROUP,
    name="SAP Group Extension",
    description="Application-specific group attributes",
    attributes=(
        string("applicationId", description="The id of the application the group belongs to."),
        string(
            "type",
            canonical_values=("userGroup", "authorization", "tenant"),
            description="The kind of group: userGroup (the default), authorization or tenant.",
        ),
        string(
            "supportedOperations",
            canonical_values=("readOnly", "readWrite", "userOnlyMembership", "membership"),
            description="What may change in the group: readOnly, readWrite (the default), "
            "userOnlyMembership or membership.",
        ),
        string(
            "externalName",
            description="The group's name in its application, unique per application.",
        ),
        string("externalLocation", description="Where the group lives in its application."),
        multi(
            "children",
            string("value", mutability=RO, description="The id of a member group."),
            reference("$ref", ["Group"], mutability=RO, description="The URI of a member group."),
            mutability=RO,
            returned=Returned.REQUEST,
            description="The groups that are members of this group.",
        ),
    ),
)

# SAP's vendor extensions: accepted on every resource and described under /Schemas, but not
# declared as schemaExtensions of the resource types (optional, RFC 7643 §6), so that
# generic SCIM clients see the standard profile. See docs/decisions/0004-sap-extensions.md.
VENDOR_EXTENSIONS = frozenset({SAP_USER, SAP_CUSTOM_USER, SAP_GROUP, SAP_CUSTOM_GROUP})

BUILT_IN = (
    CORE_USER,
    ENTERPRISE,
    SAP_USER_EXTENSION,
    SAP_CUSTOM_USER_EXTENSION,
    CORE_GROUP,
    SAP_CUSTOM_GROUP_EXTENSION,
    SAP_GROUP_EXTENSION,
)
