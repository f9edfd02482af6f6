"""Resource ids of a proxy: back-end keys that are safe in a URL path segment are used as
they are; any other key (an LDAP DN, a name with spaces or slashes) is encoded.

An encoded id is ``~`` followed by the key's UTF-8 bytes in lower-case base32 without
padding (spec §5.7: ``encode`` base32, ``skipPadding``). ``~`` never starts a key used as it
is, so decoding is unambiguous.
"""

from __future__ import annotations

import base64
import binascii
import re

MARK = "~"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


def encode(key: str) -> str:
    """The resource id of a back-end key."""
    if _SAFE.fullmatch(key):
        return key
    text = base64.b32encode(key.encode("utf-8")).decode("ascii").rstrip("=").lower()
    return MARK + text


def decode(resource_id: str) -> str:
    """The back-end key of a resource id (an id that is no encoded key is the key)."""
    if not resource_id.startswith(MARK):
        return resource_id
    text = resource_id[len(MARK) :].upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8)).decode("utf-8")
    except (binascii.Error, ValueError):
        return resource_id
