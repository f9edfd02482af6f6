"""What differs between LDAP servers and Active Directory: delta reads and forced attributes.

LDAP servers track changes with the operational ``modifyTimestamp`` (RFC 4512): a delta read
asks for ``(modifyTimestamp>=T)`` where T, the token, is the highest timestamp the previous
read saw. ``>=`` re-reads what changed within that second rather than miss it.

Active Directory numbers every change with an update sequence number: a delta read asks for
``(uSNChanged>=N+1)`` where N is the domain controller's ``highestCommittedUSN`` when the
previous read started (or, if the root DSE does not give it, the highest ``uSNChanged`` seen).
USNs are per domain controller: keep ``ldap.url`` on one DC.

Writes to Active Directory follow its rules: ``unicodePwd`` is the password in double quotes,
UTF-16-LE encoded, and only sent over TLS (AD refuses it on a plain connection);
``sAMAccountName`` has at most 20 characters for a user and none of ``"/\\[]:;|=,+*?<>``.
A write that breaks them fails for its entity, before anything is sent.

No python-ldap here: the server is asked through the ``RootReader`` given.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Mapping, Sequence

from provisor.connectors.base import ConnectorError, InvalidEntity
from provisor.types import EntityType

TIMESTAMP = re.compile(r"^(\d{14})(?:[.,](\d{1,6}))?Z$")
ACCOUNT_NAME_MAX = 20  # characters of a user's sAMAccountName (the pre-Windows 2000 logon name)
ACCOUNT_NAME_FORBIDDEN = frozenset('"/\\[]:;|=,+*?<>')

RootReader = Callable[[Sequence[str]], Mapping[str, list[bytes]]]


class InvalidDeltaToken(ConnectorError):
    """The delta token does not come from this kind of server: run a full read."""


def _first(attributes: Mapping[str, list[bytes]], name: str) -> str | None:
    for key, values in attributes.items():
        if key.lower() == name.lower() and values:
            return values[0].decode("ascii", "replace")
    return None


class Tracker(abc.ABC):
    """Follows one read to give the token where the next delta read starts."""

    def __init__(self, previous: str | None) -> None:
        self.previous = previous
        self.highest: str | None = None

    @abc.abstractmethod
    def see(self, attributes: Mapping[str, list[bytes]]) -> None:
        """Note a read entry's attributes."""

    def token(self) -> str | None:
        return self.highest or self.previous


class Dialect:
    """A standard LDAP v3 server (OpenLDAP, 389 DS, ...)."""

    name = "LDAP"
    # Attributes every read asks for, and those of them removed from read entities unless
    # ldap.*.attributes lists them or the connector serves a proxy (operational ones that
    # "*" would not have returned; the proxy read maps them to meta.created/lastModified).
    read_extras: tuple[str, ...] = ("modifyTimestamp", "createTimestamp")
    hidden: frozenset[str] = frozenset({"modifytimestamp", "createtimestamp"})
    user_attributes: tuple[str, ...] = ()  # always read for users

    def delta_filter(self, token: str) -> str:
        if not TIMESTAMP.match(token):
            raise InvalidDeltaToken(
                f"delta token {token!r} is not an LDAP generalized time (YYYYMMDDhhmmssZ)"
            )
        return f"(modifyTimestamp>={token})"

    def tracker(self, previous: str | None, root: RootReader) -> Tracker:
        return TimestampTracker(previous)

    def prepare(self, entity_type: str, attributes: dict[str, list[bytes]], tls: bool) -> None:
        """Check and encode the attributes of a write (in place), over TLS or not."""

    def changed_since(self, stamp: str | None, token: str) -> bool:
        """Whether an entry with this ``modifyTimestamp`` changed since the token's time."""
        if stamp is None or not TIMESTAMP.match(stamp) or not TIMESTAMP.match(token):
            return True  # unknown: better read once more than miss a change
        return _timestamp_key(stamp) >= _timestamp_key(token)


class TimestampTracker(Tracker):
    def see(self, attributes: Mapping[str, list[bytes]]) -> None:
        value = _first(attributes, "modifyTimestamp")
        if value is None or not TIMESTAMP.match(value):
            return
        if self.highest is None or _timestamp_key(value) > _timestamp_key(self.highest):
            self.highest = value


def _timestamp_key(value: str) -> tuple[str, float]:
    match = TIMESTAMP.match(value)
    assert match is not None
    return match.group(1), float("0." + (match.group(2) or "0"))


class ActiveDirectory(Dialect):
    """Microsoft Active Directory."""

    name = "Active Directory"
    read_extras = ("uSNChanged",)
    hidden = frozenset()
    user_attributes = ("sAMAccountName",)

    def delta_filter(self, token: str) -> str:
        if not token.isdigit():
            raise InvalidDeltaToken(f"delta token {token!r} is not an update sequence number")
        return f"(uSNChanged>={int(token) + 1})"

    def tracker(self, previous: str | None, root: RootReader) -> Tracker:
        tracker = USNTracker(previous)
        tracker.committed = _first(root(["highestCommittedUSN"]), "highestCommittedUSN")
        return tracker

    def prepare(self, entity_type: str, attributes: dict[str, list[bytes]], tls: bool) -> None:
        for key, values in attributes.items():
            name = key.lower()
            if name == "unicodepwd" and values:
                if not tls:
                    raise InvalidEntity(
                        "Active Directory takes a password (unicodePwd) only over an encrypted "
                        "connection: use an ldaps:// URL or ldap.ssl.mode=starttls"
                    )
                attributes[key] = [unicode_password(v) for v in values]
            elif name == "samaccountname":
                for value in values:
                    check_account_name(entity_type, value.decode(errors="replace"))

    def changed_since(self, stamp: str | None, token: str) -> bool:
        if stamp is None or not stamp.isdigit() or not token.isdigit():
            return True
        return int(stamp) > int(token)


class USNTracker(Tracker):
    committed: str | None = None  # the DC's highestCommittedUSN when the read started

    def see(self, attributes: Mapping[str, list[bytes]]) -> None:
        value = _first(attributes, "uSNChanged")
        if value is not None and value.isdigit():
            if self.highest is None or int(value) > int(self.highest):
                self.highest = value

    def token(self) -> str | None:
        if self.committed is not None and self.committed.isdigit():
            return self.committed
        return super().token()


def unicode_password(value: bytes) -> bytes:
    """A password as Active Directory's ``unicodePwd`` takes it: quoted, UTF-16-LE."""
    return ('"' + value.decode() + '"').encode("utf-16-le")


def check_account_name(entity_type: str, name: str) -> None:
    """InvalidEntity when Active Directory would refuse ``name`` as a sAMAccountName."""
    forbidden = sorted(ACCOUNT_NAME_FORBIDDEN.intersection(name))
    if forbidden:
        raise InvalidEntity(
            f"sAMAccountName {name!r} contains {' '.join(forbidden)}: Active Directory allows "
            f"none of {' '.join(sorted(ACCOUNT_NAME_FORBIDDEN))}"
        )
    if entity_type == EntityType.USER and len(name) > ACCOUNT_NAME_MAX:
        raise InvalidEntity(
            f"sAMAccountName {name!r} has {len(name)} characters: Active Directory allows at "
            f"most {ACCOUNT_NAME_MAX} for a user"
        )
