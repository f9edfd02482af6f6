"""The LDAP Server and Microsoft Active Directory connector types and their properties (§9.3).

Both types share the ``ldap.*`` properties; Active Directory differs in its defaults (entries
named by ``cn``, the object classes ``user`` and ``group``) and adds the ``ad.*`` properties.
``ldap.ssl.mode``, ``ldap.tls.ca.file`` and ``ldap.tls.trust.all`` are provisor extensions:
SAP reaches LDAP servers only through the Cloud Connector and documents no TLS property.

This module must not import python-ldap: listing types and checking properties work without it.
"""

from __future__ import annotations

from provisor.connectors.types import (
    ALL_ROLES,
    SP,
    TP,
    ConnectorType,
    Kind,
    P,
    PropertySpec,
    S,
    generic_properties,
    register,
)

IMPLEMENTATION = "provisor.connectors.ldap.connector"


def _properties(*, active_directory: bool) -> tuple[PropertySpec, ...]:
    user_id = "cn" if active_directory else "uid"
    member_name = "cn" if active_directory else "uid"
    user_class = "user" if active_directory else "inetOrgPerson"
    group_class = "group" if active_directory else "groupOfNames"
    attribute = [
        (
            "ldap.attribute.user.id",
            user_id,
            "Attribute holding a user's id (its RDN on create); "
            "distinguishedName makes the DN the id.",
        ),
        (
            "ldap.attribute.group.id",
            "cn",
            "Attribute holding a group's id (its RDN on create); "
            "distinguishedName makes the DN the id.",
        ),
        ("ldap.attribute.dn", "distinguishedName", "Name of the DN in read entities (fixed)."),
        ("ldap.attribute.group.member", "member", "Attribute of a group holding its members."),
        ("ldap.attribute.user.mail", "mail", "Mail attribute, a %parameter% of the defaults."),
        ("ldap.attribute.user.mobile", "mobile", "Mobile phone attribute."),
        ("ldap.attribute.user.givenName", "givenName", "Given name attribute."),
        ("ldap.attribute.user.surname", "sn", "Surname attribute."),
        (
            "ldap.attribute.user.groups",
            "memberOf",
            "Attribute of read users listing their "
            "groups (by ldap.group.uniquename.attribute; only groups under ldap.group.path).",
        ),
        ("ldap.attribute.user.telephoneNumber", "telephoneNumber", "Work phone attribute."),
    ]
    return (
        PropertySpec(
            "Type",
            Kind.CHOICE,
            default="LDAP",
            seeded=True,
            choices=("LDAP",),
            description="The protocol: always LDAP.",
        ),
        PropertySpec(
            "ldap.url",
            Kind.URL,
            required=ALL_ROLES,
            schemes=("ldap", "ldaps"),
            description="The server, ldap://host:port or ldaps://host:port.",
        ),
        PropertySpec(
            "ldap.proxyType",
            Kind.CHOICE,
            default="Internet",
            choices=("Internet", "OnPremise"),
            description="SAP's proxy type: provisor always connects directly to ldap.url. "
            "OnPremise (SAP's Cloud Connector) is accepted for compatibility, but not with "
            "ClientCertificateAuthentication.",
        ),
        PropertySpec(
            "ldap.authentication",
            Kind.CHOICE,
            default="BasicAuthentication",
            choices=("BasicAuthentication", "ClientCertificateAuthentication"),
            description="BasicAuthentication: simple bind with ldap.user and ldap.password. "
            "ClientCertificateAuthentication (provisor extension): the system's active "
            "outbound certificate in the TLS handshake (an ldaps:// URL or "
            "ldap.ssl.mode=starttls), then a SASL EXTERNAL bind; ldap.user and ldap.password "
            "are unused.",
        ),
        PropertySpec(
            "ldap.user",
            description="Bind DN of BasicAuthentication (Active Directory also takes a UPN, "
            "user@domain); empty binds anonymously.",
        ),
        PropertySpec(
            "ldap.password",
            Kind.CREDENTIAL,
            description="Password of ldap.user (BasicAuthentication).",
        ),
        PropertySpec(
            "ldap.user.path",
            required=ALL_ROLES,
            description="Base DN of the users, e.g. ou=people,dc=example,dc=org.",
        ),
        PropertySpec(
            "ldap.group.path",
            required=ALL_ROLES,
            description="Base DN of the groups; keep it apart from ldap.user.path.",
        ),
        PropertySpec(
            "ldap.user.filter",
            roles=SP,
            description="RFC 4515 filter added to user reads, e.g. (cn=123*); empty reads all.",
        ),
        PropertySpec(
            "ldap.group.filter",
            roles=SP,
            description="RFC 4515 filter added to group reads, e.g. (|(cn=Canteen)(cn=Finance)).",
        ),
        PropertySpec(
            "ldap.user.object.class",
            default=user_class,
            seeded=True,
            description="Object class(es) of users, comma-separated: read filter and create.",
        ),
        PropertySpec(
            "ldap.group.object.class",
            default=group_class,
            seeded=True,
            description="Object class(es) of groups, comma-separated: read filter and create.",
        ),
        PropertySpec(
            "ldap.user.attributes",
            roles=SP,
            description="Comma list of user attributes to read (only with ldap.api.version=2); "
            "empty reads all.",
        ),
        PropertySpec(
            "ldap.group.attributes",
            roles=SP,
            description="Comma list of group attributes to read (only with ldap.api.version=2); "
            "empty reads all.",
        ),
        *(
            PropertySpec(key, default=default, seeded=True, description=description)
            for key, default, description in attribute
        ),
        PropertySpec(
            "ldap.group.uniquename.attribute",
            default="cn",
            seeded=True,
            description="What names a group in users' memberOf (cn or displayName).",
        ),
        PropertySpec(
            "ldap.member.uniquename.attribute",
            default=member_name,
            seeded=True,
            description="What names a member in read groups (cn, uid or distinguishedName) "
            "and the RDN attribute of member DNs built by the write transformation.",
        ),
        PropertySpec(
            "ldap.attribute.user.object.class.required",
            default="cn",
            seeded=True,
            roles=TP,
            description="Attribute the object class requires, set from the id on create.",
        ),
        PropertySpec(
            "ldap.attribute.group.object.class.required",
            default="cn",
            seeded=True,
            roles=TP,
            description="Attribute the group object class requires, set from the id on create.",
        ),
        PropertySpec(
            "ldap.respond.with.resource.after.create",
            Kind.BOOLEAN,
            default="true",
            roles=P,
            description="Proxy: read the entity back after a create and answer with it.",
        ),
        PropertySpec(
            "ldap.respond.with.resource.after.update",
            Kind.BOOLEAN,
            default="true",
            roles=P,
            description="Proxy: read the entity back after an update (else no content).",
        ),
        PropertySpec(
            "ldap.page.size",
            Kind.INTEGER,
            default="100",
            minimum=1,
            maximum=1000,
            description="Entries per page of a read (simple paged results).",
        ),
        PropertySpec(
            "ldap.api.version",
            Kind.CHOICE,
            default="1",
            choices=("1", "2"),
            description="2 honours ldap.user.attributes and ldap.group.attributes.",
        ),
        PropertySpec(
            "com.sun.jndi.ldap.read.timeout",
            Kind.INTEGER,
            minimum=1,
            description="Milliseconds to wait for an answer; unset waits 60000.",
        ),
        PropertySpec(
            "com.sun.jndi.ldap.connect.timeout",
            Kind.INTEGER,
            minimum=1,
            description="Milliseconds to wait for a connection; unset waits 10000.",
        ),
        PropertySpec(
            "ldap.ssl.mode",
            Kind.CHOICE,
            choices=("none", "ldaps", "starttls"),
            description="provisor extension. Transport security: ldaps (TLS from the start, "
            "needs an ldaps:// URL), starttls (ldap:// URL, then StartTLS before the bind) or "
            "none; unset means ldaps for ldaps:// URLs and none otherwise.",
        ),
        PropertySpec(
            "ldap.tls.ca.file",
            Kind.FILE,
            description="provisor extension. PEM file of the CA certificates to trust for the "
            "server's certificate, relative to the data folder (an absolute path must lie in "
            "it or in a folder of PROVISOR_FILE_ROOTS); unset uses the system's trust store.",
        ),
        PropertySpec(
            "ldap.tls.trust.all",
            Kind.BOOLEAN,
            default="false",
            description="provisor extension, for tests only: accept any server certificate "
            "and host name (no protection against a man in the middle).",
        ),
        PropertySpec(
            "CloudConnectorLocationId",
            description="SAP Cloud Connector location; accepted for compatibility, unused.",
        ),
    )


def _active_directory_properties() -> tuple[PropertySpec, ...]:
    return (
        PropertySpec(
            "ad.group.flatten",
            Kind.BOOLEAN,
            default="false",
            roles=S,
            description="Resolve nested groups recursively into their parents: a group's "
            "members are the users below it and users are members of the groups above.",
        ),
        PropertySpec(
            "ad.group.flatten.page.size",
            Kind.INTEGER,
            default="1000",
            minimum=100,
            maximum=1000,
            roles=S,
            description="Page size of the group reads that flattening needs.",
        ),
    )


LDAP = register(
    ConnectorType(
        id="ldap",
        name="LDAP Server",
        prefix="ldap",
        roles=ALL_ROLES,
        implementation=f"{IMPLEMENTATION}:LDAPConnector",
        properties=(*_properties(active_directory=False), *generic_properties()),
        description="An LDAP v3 directory (OpenLDAP, 389 DS, ...) over ldap://, ldaps:// or "
        "StartTLS.",
        aliases=("LDAP", "LDAP Server"),
    )
)

MICROSOFT_AD = register(
    ConnectorType(
        id="microsoft-ad",
        name="Microsoft Active Directory",
        prefix="ldap",
        roles=ALL_ROLES,
        implementation=f"{IMPLEMENTATION}:ActiveDirectoryConnector",
        properties=(
            *_properties(active_directory=True),
            *_active_directory_properties(),
            *generic_properties(),
        ),
        description="Microsoft Active Directory over LDAP: sAMAccountName, nested groups, "
        "delta reads by uSNChanged.",
        aliases=("Active Directory", "AD", "Microsoft AD"),
        known_prefixes=("ad",),
    )
)
