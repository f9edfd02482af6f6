"""Delta tokens of user reads that carry who belonged to which groups (no python-ldap here).

A membership change modifies the group entry, not the member's: a delta read by
``modifyTimestamp`` (or ``uSNChanged``) alone misses a user whose only change is a group
joined or left. So the token of a user read also holds a snapshot of the memberships it saw:
for every user listed by a group under ``ldap.group.path``, a key of its DN and a fingerprint
of its groups' unique names (8 bytes each of SHA-256: no names or DNs are stored). The next
delta read compares the snapshot with the memberships it sees and reads every user whose
fingerprint differs, appears or disappears: users who joined or left a group, whose group was
renamed or deleted.

The token is ``<marker>`` (no snapshot: a read without groups, or a token made from a time
by ``delta_token_after``) or ``<marker>|<base64url of the sorted key and fingerprint pairs>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provisor.connectors.ldap.dialects import InvalidDeltaToken

SEPARATOR = "|"
DIGEST = 8  # bytes of SHA-256 kept per key and per fingerprint

Snapshot = Mapping[bytes, bytes]  # member key -> fingerprint of its groups


def member_key(normalized_dn: str) -> bytes:
    """The key of a user in a snapshot (from its normalized DN)."""
    return hashlib.sha256(normalized_dn.encode()).digest()[:DIGEST]


def fingerprint(group_names: Iterable[str]) -> bytes:
    """What identifies a set of group names (order and repeats ignored)."""
    text = "\n".join(sorted(set(group_names)))
    return hashlib.sha256(text.encode()).digest()[:DIGEST]


@dataclass(frozen=True, slots=True)
class DeltaToken:
    marker: str  # modifyTimestamp (LDAP) or update sequence number (Active Directory)
    memberships: Snapshot | None = None  # None: not known (no snapshot taken)

    @classmethod
    def parse(cls, text: str) -> DeltaToken:
        marker, separator, encoded = text.partition(SEPARATOR)
        if not separator:
            return cls(marker)
        step = 2 * DIGEST
        try:
            padded = encoded + "=" * (-len(encoded) % 4)
            packed = base64.b64decode(padded, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            packed = b"\0"  # refused below
        if len(packed) % step:
            raise InvalidDeltaToken("the delta token's memberships are damaged: run a full read")
        pairs = (packed[i : i + step] for i in range(0, len(packed), step))
        return cls(marker, {pair[:DIGEST]: pair[DIGEST:] for pair in pairs})

    def text(self) -> str:
        if self.memberships is None:
            return self.marker
        packed = b"".join(k + v for k, v in sorted(self.memberships.items()))
        encoded = base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")
        return f"{self.marker}{SEPARATOR}{encoded}"


def changed_members(previous: Snapshot, current: Snapshot) -> set[bytes]:
    """The keys of the users whose groups differ between two snapshots."""
    keys = previous.keys() | current.keys()
    return {key for key in keys if previous.get(key) != current.get(key)}
