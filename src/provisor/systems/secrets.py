"""Credential properties, encrypted at rest (Fernet) and masked on the way out."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken

from provisor.auth.keys import derive_key
from provisor.errors import MasterKeyError

MASK = "*" * 40  # what a credential looks like outside (SAP's console shows 40 characters)
ALWAYS_SECRET = frozenset({"Password"})  # a credential on every system type (SAP's console)


class CredentialCipher:
    """Encrypts credential values with a key derived from the installation's master key."""

    def __init__(self, master_key: bytes, purpose: str = "system credentials") -> None:
        key = derive_key(master_key, purpose)
        self._purpose = purpose
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError) as exc:
            raise MasterKeyError(
                f"Stored {self._purpose} cannot be decrypted: this server's master key "
                "(PROVISOR_SECRET_KEY or <data-dir>/secret.key) is not the one they were saved "
                "with. Give every node the same master key, or enter them again."
            ) from exc
