"""A system's LDAP properties, checked and parsed once (no python-ldap needed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from provisor.connectors.base import ConnectorConfig, ConnectorError, Role
from provisor.connectors.outbound import DEFAULT, OutboundPolicy, policy_of
from provisor.connectors.paths import file_roots
from provisor.connectors.properties import Properties
from provisor.connectors.tls import client_certificate
from provisor.connectors.types import ConnectorType
from provisor.errors import ConfigError
from provisor.types import EntityType

DN_ATTRIBUTE = "distinguishedName"
DEFAULT_CONNECT_TIMEOUT_MS = 10_000
DEFAULT_READ_TIMEOUT_MS = 60_000


class SSLMode(StrEnum):
    NONE = "none"
    LDAPS = "ldaps"
    STARTTLS = "starttls"


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityOptions:
    """How one entity type (user or group) lives in the directory."""

    entity_type: EntityType
    path: str | None  # base DN
    filter: str  # extra read filter, "" for none
    object_classes: tuple[str, ...]
    attributes: tuple[str, ...] | None  # attributes to read; None for all
    id_attribute: str  # or DN_ATTRIBUTE
    required_attribute: str  # RDN attribute on create when the id is the DN

    @property
    def id_is_dn(self) -> bool:
        return self.id_attribute.lower() == DN_ATTRIBUTE.lower()

    def require_path(self) -> str:
        if not self.path:
            key = f"ldap.{self.entity_type}.path"
            raise ConnectorError(f"{key} is not set: this system has no {self.entity_type}s")
        return self.path


@dataclass(frozen=True, slots=True, kw_only=True)
class LDAPOptions:
    url: str
    ssl_mode: SSLMode
    ca_file: str | None
    trust_all: bool
    bind_dn: str
    password: str
    connect_timeout: float  # seconds
    read_timeout: float  # seconds
    page_size: int
    user: EntityOptions
    group: EntityOptions
    member_attribute: str
    groups_attribute: str  # the membership attribute of read users (memberOf)
    group_name_attribute: str  # what names a group in users' memberOf
    member_name_attribute: str  # what names a member in read groups
    role: Role
    respond_after_create: bool
    respond_after_update: bool
    flatten: bool = False  # AD: resolve nested groups
    flatten_page_size: int = 1000
    # ClientCertificateAuthentication: reads the system's active (certificate PEM, key PEM),
    # or raises a ConfigError; called for each new connection, which binds by SASL EXTERNAL.
    client_certificate: Callable[[], tuple[str, str]] | None = None
    outbound: OutboundPolicy = DEFAULT  # where connections may go

    @property
    def who(self) -> str:
        """Who the connection is bound as, for messages."""
        if self.client_certificate is not None:
            return "the system's client certificate (SASL EXTERNAL)"
        return self.bind_dn or "an anonymous bind"

    def entity(self, entity_type: str) -> EntityOptions:
        if entity_type == EntityType.USER:
            return self.user
        if entity_type == EntityType.GROUP:
            return self.group
        raise ConnectorError(f"LDAP systems hold users and groups, not {entity_type!r}")

    def __repr__(self) -> str:  # never show the password
        return f"LDAPOptions(url={self.url!r}, bind_dn={self.bind_dn!r}, ...)"

    @classmethod
    def parse(cls, config: ConnectorConfig, connector_type: ConnectorType) -> LDAPOptions:
        """The options of a system; ConfigError naming the property when one is wrong."""
        given = {k: v for k, v in config.properties.items() if v != ""}
        problems = []
        for key, value in given.items():
            spec = connector_type.spec(key)
            problem = spec.check(value) if spec is not None and isinstance(value, str) else None
            if problem:
                problems.append(f"{key}: {problem}, not {value!r}")
        props = connector_type.effective(given)
        url = (props.get("ldap.url") or "").strip()
        if not url:
            problems.append("ldap.url: required")
        elif any(c.isspace() for c in url):  # libldap would try each URL of a list
            problems.append(f"ldap.url: one URL, not {url!r}")
        if not (props.get("ldap.user.path") or "").strip():
            problems.append("ldap.user.path: required")
        if problems:
            raise ConfigError("Invalid LDAP settings: " + "; ".join(problems))

        def text(key: str) -> str:
            return (props.get(key) or "").strip()

        read = Properties(props)

        def number(key: str, default: int) -> int:
            found = read.number(key, default)
            return default if found is None else found

        scheme = url.partition("://")[0].lower()
        mode = SSLMode(text("ldap.ssl.mode") or ("ldaps" if scheme == "ldaps" else "none"))
        if (mode is SSLMode.LDAPS) != (scheme == "ldaps"):
            raise ConfigError(
                f"ldap.ssl.mode={mode} does not fit ldap.url {url}: ldaps needs an ldaps:// URL, "
                "none and starttls an ldap:// URL"
            )
        certificate: Callable[[], tuple[str, str]] | None = None
        if text("ldap.authentication") == "ClientCertificateAuthentication":
            if mode is SSLMode.NONE:
                raise ConfigError(
                    "ldap.authentication=ClientCertificateAuthentication needs TLS (the client "
                    "certificate is presented in the TLS handshake), but ldap.ssl.mode is none: "
                    "use an ldaps:// URL or ldap.ssl.mode=starttls"
                )
            certificate = partial(client_certificate, config, proxy_type="ldap.proxyType")

        def entity(
            kind: EntityType, classes_key: str, id_key: str, required_key: str
        ) -> EntityOptions:
            listed = _split(text(f"ldap.{kind}.attributes"))
            return EntityOptions(
                entity_type=kind,
                path=text(f"ldap.{kind}.path") or None,
                filter=_parenthesized(text(f"ldap.{kind}.filter")),
                object_classes=_split(text(classes_key)),
                attributes=listed if text("ldap.api.version") == "2" and listed else None,
                id_attribute=text(id_key),
                required_attribute=text(required_key) or "cn",
            )

        ca_file = text("ldap.tls.ca.file")
        if ca_file:  # in the allowed folders (see connectors.paths), a regular file readable now
            ca_file = str(file_roots(config.services).readable("ldap.tls.ca.file", ca_file).path)
        return cls(
            url=url,
            ssl_mode=mode,
            ca_file=ca_file or None,
            trust_all=read.flag("ldap.tls.trust.all"),
            bind_dn=text("ldap.user"),
            password=props.get("ldap.password") or "",
            connect_timeout=number("com.sun.jndi.ldap.connect.timeout", DEFAULT_CONNECT_TIMEOUT_MS)
            / 1000,
            read_timeout=number("com.sun.jndi.ldap.read.timeout", DEFAULT_READ_TIMEOUT_MS) / 1000,
            page_size=number("ldap.page.size", 100),
            user=entity(
                EntityType.USER,
                "ldap.user.object.class",
                "ldap.attribute.user.id",
                "ldap.attribute.user.object.class.required",
            ),
            group=entity(
                EntityType.GROUP,
                "ldap.group.object.class",
                "ldap.attribute.group.id",
                "ldap.attribute.group.object.class.required",
            ),
            member_attribute=text("ldap.attribute.group.member"),
            groups_attribute=text("ldap.attribute.user.groups"),
            group_name_attribute=text("ldap.group.uniquename.attribute"),
            member_name_attribute=text("ldap.member.uniquename.attribute"),
            role=config.role,
            respond_after_create=text("ldap.respond.with.resource.after.create") != "false",
            respond_after_update=text("ldap.respond.with.resource.after.update") != "false",
            flatten=bool(connector_type.spec("ad.group.flatten")) and read.flag("ad.group.flatten"),
            flatten_page_size=number("ad.group.flatten.page.size", 1000),
            client_certificate=certificate,
            outbound=policy_of(config.services),
        )


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _parenthesized(value: str) -> str:
    """A filter as a parenthesized item (SAP also accepts ``cn=x`` without parentheses)."""
    if not value:
        return ""
    return value if value.startswith("(") else f"({value})"
