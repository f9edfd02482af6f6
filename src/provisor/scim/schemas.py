"""The built-in schemas of the Local Identity Directory (RFC 7643 and SAP extensions)."""

from __future__ import annotations

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
)

SAP_USER_EXTENSION = Schema(
    id=SAP_USER,
    name="SAP User Extension",
    description="SAP Cloud Identity Services user attributes",
    attributes=(
        string("userId", mutability=RO),
        string("userUuid", case_exact=True, mutability=RO, uniqueness=Uniqueness.SERVER),
        multi("emails", string("value"), boolean("verified"), boolean("primary")),
        boolean("sendMail"),
        boolean("mailVerified"),
        complex_(
            "passwordDetails",
            string("status", canonical_values=("initial", "enabled", "disabled")),
            datetime_("setTime", mutability=RO),
        ),
        # Strings, not dateTime: SAP clients send ISO 8601 timestamps and compare them as text;
        # a typed dateTime would also make scim2-tester fail (it cannot generate one).
        string("validFrom", case_exact=True),
        string("validTo", case_exact=True),
        integer("sourceSystem"),
        string("sourceSystemId"),
        string("status", canonical_values=("active", "inactive", "new")),
        string("applicationId"),
        multi("corporateGroups", string("value")),
        reference("targetUrl", ["external"]),
        string("emailTemplateSetId"),
        boolean("totpEnabled"),
        boolean("webAuthEnabled"),
        boolean("mfaEnabled"),
        datetime_("loginTime", mutability=RO),
        datetime_("passwordLoginTime", mutability=RO),
    ),
)

SAP_CUSTOM_USER_EXTENSION = Schema(
    id=SAP_CUSTOM_USER,
    name="SAP Custom User Attributes",
    description="Up to ten customer-specific attributes",
    attributes=(
        multi(
            "attributes",
            string("name", canonical_values=tuple(f"customAttribute{i}" for i in range(1, 11))),
            string("value"),
        ),
        string("userId"),  # the user's id in the system it came from (spec §7.3)
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
)

SAP_CUSTOM_GROUP_EXTENSION = Schema(
    id=SAP_CUSTOM_GROUP,
    name="SAP Custom Group Attributes",
    description="Technical name and description of a group",
    attributes=(
        string("name", uniqueness=Uniqueness.SERVER),
        string("description"),
        string("additionalId"),
    ),
)

SAP_GROUP_EXTENSION = Schema(
    id=SAP_GROUP,
    name="SAP Group Extension",
    description="Application-specific group attributes",
    attributes=(
        string("applicationId"),
        string("type", canonical_values=("userGroup", "authorization", "tenant")),
        string(
            "supportedOperations",
            canonical_values=("readOnly", "readWrite", "userOnlyMembership", "membership"),
        ),
        string("externalName"),
        string("externalLocation"),
        multi(
            "children",
            string("value", mutability=RO),
            reference("$ref", ["Group"], mutability=RO),
            mutability=RO,
            returned=Returned.REQUEST,
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
