"""DNs, filter values and attribute values between python-ldap (bytes) and entities (JSON).

Read values are strings. Values of binary attributes (``objectGUID``, ``jpegPhoto``, ...,
any attribute with the ``;binary`` option, and any attribute with a value that is not UTF-8)
are standard base64; on write, string values of those attributes are base64-decoded.
Password attributes (``userPassword``, ``unicodePwd``) are never read.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

import ldap.dn  # type: ignore[import-untyped]
import ldap.filter  # type: ignore[import-untyped]

from provisor.connectors.base import Entity, InvalidEntity

BINARY = frozenset(
    name.lower()
    for name in (
        "objectGUID",
        "objectSid",
        "sIDHistory",
        "tokenGroups",
        "nTSecurityDescriptor",
        "msExchMailboxGuid",
        "msExchMailboxSecurityDescriptor",
        "mS-DS-ConsistencyGuid",
        "msDS-GenerationId",
        "logonHours",
        "thumbnailPhoto",
        "jpegPhoto",
        "photo",
        "audio",
        "userCertificate",
        "userSMIMECertificate",
        "userPKCS12",
        "cACertificate",
        "certificateRevocationList",
        "authorityRevocationList",
        "crossCertificatePair",
        "deltaRevocationList",
    )
)
SECRET = frozenset(("userpassword", "unicodepwd"))
RANGE = re.compile(
    r"^(?P<name>[^;]+(?:;(?!range=)[^;]+)*);range=(?P<start>\d+)-(?P<end>\d+|\*)$", re.I
)
ATTRIBUTE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)(?:;[A-Za-z0-9-]+)*$")


# -- DNs ------------------------------------------------------------------------------------------


def escape_dn(value: str) -> str:
    """A value made safe as an RDN value (``,`` ``+`` ``=`` ``"`` ``\\`` ``<`` ``>`` ``;`` ...)."""
    return str(ldap.dn.escape_dn_chars(value))


def escape_filter(value: str) -> str:
    """A value made safe in a filter assertion (``*`` ``(`` ``)`` ``\\`` NUL)."""
    return str(ldap.filter.escape_filter_chars(value))


def parse_dn(dn: str) -> list[list[tuple[str, str, int]]] | None:
    """The RDNs of a DN, or None when it is not one."""
    try:
        parsed: list[list[tuple[str, str, int]]] = ldap.dn.str2dn(dn)
    except ldap.DECODING_ERROR:
        return None
    return parsed


def is_dn(value: str) -> bool:
    """Whether a value is a DN (``uid=x,ou=people,...``) rather than a plain name."""
    parsed = parse_dn(value) if "=" in value else None
    return bool(parsed) and all(rdn for rdn in parsed or ())


def normalize_dn(dn: str) -> str:
    """A DN for comparisons: attribute types and values lower-cased, spacing canonical.

    Close to the server's ``distinguishedNameMatch`` for the usual case-ignoring naming
    attributes (cn, uid, ou, dc); a comparison can still differ from the server's.
    """
    parsed = parse_dn(dn)
    if parsed is None:
        return dn.strip().lower()
    return str(
        ldap.dn.dn2str([[(t.lower(), v.strip().lower(), 1) for t, v, _ in rdn] for rdn in parsed])
    )


def is_under(dn: str, base: str) -> bool:
    """Whether ``dn`` is ``base`` or below it (both normalized)."""
    return dn == base or dn.endswith("," + base)


def rdn_of(dn: str) -> tuple[str, str] | None:
    """The attribute and value of a DN's first RDN, when it has one value."""
    parsed = parse_dn(dn)
    if not parsed or len(parsed[0]) != 1:
        return None
    attribute, value, _ = parsed[0][0]
    return attribute, value


def parent_of(dn: str) -> str:
    parsed = parse_dn(dn)
    return str(ldap.dn.dn2str(parsed[1:])) if parsed else ""


def replace_rdn(dn: str, attribute: str, value: str) -> tuple[str, str]:
    """The new RDN and the new DN when the first RDN becomes ``attribute=value``."""
    rdn = f"{attribute}={escape_dn(value)}"
    parent = parent_of(dn)
    return rdn, f"{rdn},{parent}" if parent else rdn


def split_range(key: str) -> tuple[str, int, int | None] | None:
    """``member;range=0-1499`` (AD ranged retrieval) as ``("member", 0, 1499)``; ``*`` as
    the end gives None (the last range); None when the key has no range."""
    match = RANGE.match(key)
    if match is None:
        return None
    end = match["end"]
    return match["name"], int(match["start"]), None if end == "*" else int(end)


def is_attribute_name(name: str) -> bool:
    return bool(ATTRIBUTE.match(name))


# -- attribute values -----------------------------------------------------------------------------


def is_binary(attribute: str) -> bool:
    name, _, options = attribute.partition(";")
    return name.lower() in BINARY or "binary" in options.lower().split(";")


def decode_entry(dn: str, attributes: Mapping[str, list[bytes]]) -> Entity:
    """An entry as an entity: ``{"dn": dn, "distinguishedName": [dn], attribute: [str]}``."""
    entity: Entity = {"dn": dn}
    for name, raw in attributes.items():
        if name.lower() in SECRET:
            continue
        entity[name] = decode_values(name, raw)
    if not any(k.lower() == "distinguishedname" for k in attributes):
        entity["distinguishedName"] = [dn]
    return entity


def decode_values(attribute: str, raw: list[bytes]) -> list[str]:
    if not is_binary(attribute):
        try:
            return [value.decode() for value in raw]
        except UnicodeDecodeError:
            pass
    return [base64.b64encode(value).decode("ascii") for value in raw]


def encode_values(attribute: str, value: Any) -> list[bytes]:
    """An entity's attribute value (a list or a scalar) as LDAP values; empty ones dropped."""
    items: Iterable[Any] = value if isinstance(value, list | tuple) else [value]
    encoded = []
    for item in items:
        if item is None or item == "" or item == b"":
            continue
        encoded.append(_encode(attribute, item))
    return encoded


def _encode(attribute: str, item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, bool):
        return b"TRUE" if item else b"FALSE"
    if isinstance(item, int | float):
        return str(item).encode()
    if isinstance(item, str):
        if is_binary(attribute):
            try:
                return base64.b64decode(item, validate=True)
            except binascii.Error:
                raise InvalidEntity(
                    f"{attribute} is a binary attribute: its values are base64"
                ) from None
        return item.encode()
    kind = type(item).__name__
    raise InvalidEntity(f"{attribute}: an LDAP value is a string, not a {kind} ({item!r:.60})")


# -- entities -------------------------------------------------------------------------------------


def attribute_key(attributes: dict[str, Any], name: str) -> str | None:
    """The key of an attribute in any spelling (LDAP names ignore case)."""
    if name in attributes:
        return name
    lowered = name.lower()
    return next((k for k in attributes if k.lower() == lowered), None)


def raw_values(attributes: dict[str, list[bytes]], name: str) -> list[bytes]:
    key = attribute_key(attributes, name)
    return attributes[key] if key is not None else []


def entity_values(entity: Entity, name: str) -> list[str]:
    key = attribute_key(entity, name)
    value = entity.get(key) if key is not None else None
    return value if isinstance(value, list) else []


def listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _encoded(values: Iterable[str]) -> list[bytes]:
    return [v.encode() for v in values]


def ensure_value(attributes: dict[str, list[bytes]], name: str, value: str) -> None:
    key = attribute_key(attributes, name) or name
    values = attributes.setdefault(key, [])
    if not any(v.decode(errors="replace").strip().lower() == value.strip().lower() for v in values):
        values.insert(0, value.encode())


def unique_names(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append(name)
    return unique


def unique_dns(dns: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for dn in dns:
        key = normalize_dn(dn)
        if key not in seen:
            seen.add(key)
            unique.append(dn)
    return unique
