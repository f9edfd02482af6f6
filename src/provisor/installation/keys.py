"""What the master key protects, and whether a node's master key is the database's.

Every value encrypted with a key derived from the master key is listed in :data:`ENCRYPTED`
(one line per column: ``provisor keys rotate`` re-encrypts what it lists, and the start check
reads a sample of it). The database keeps the master key's check value, an HMAC-SHA256 of a
fixed label under a key derived from the master key (it reveals nothing of the key), in the
``installation`` table: written at the first start, compared at every start of ``provisor
serve``, ``provisor worker`` and the local commands, and by ``/health/ready``.

Keys derived from the master key but never stored encrypt nothing here: bearer tokens (signed
with the "oauth2 bearer tokens" key) and the sealed state of a console sign-in under way are
invalid after a rotation, and their holders sign in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import ColumnElement, Table, select

from provisor.auth.keys import derive_key
from provisor.context import ANY_TENANT, Context
from provisor.errors import MasterKeyError
from provisor.installation import store
from provisor.notifications.service import SECRETS_PURPOSE as NOTIFICATION_SECRETS
from provisor.storage import tables as t
from provisor.storage.database import Database, Transaction

# The purposes of the keys that encrypt stored values (derive_key's info).
SYSTEM_CREDENTIALS = "system credentials"
CERTIFICATE_KEYS = "certificate keys"
ADMINISTRATOR_SECRETS = "administrators' second factors"  # TOTP secrets, SSO client secrets

CHECK = "master_key_check"  # the installation row of the master key's check value
NEXT = "master_key_next"  # the new key's, while a rotation is under way
NEW_KEY_FILE = "secret.key.new"  # the new key in the data folder, while a rotation is under way
_LABEL = b"provisor master key check, version 1"


@dataclass(frozen=True, slots=True)
class Encrypted:
    """A column of Fernet tokens under the key of ``purpose``; ``only``: the rows whose value
    is encrypted (the others hold plain text), all non-null ones when None. The rows are
    found by the table's primary key."""

    table: Table
    column: str
    purpose: str
    only: Callable[[Table], ColumnElement[bool]] | None = None

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"

    def where(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [self.table.c[self.column].is_not(None)]
        if self.only is not None:
            conditions.append(self.only(self.table))
        return conditions


ENCRYPTED: tuple[Encrypted, ...] = (
    Encrypted(t.system_properties, "value", SYSTEM_CREDENTIALS, lambda s: s.c.credential == 1),
    Encrypted(t.certificate_authority, "private_key", CERTIFICATE_KEYS),
    Encrypted(t.outbound_certificates, "private_key", CERTIFICATE_KEYS),
    Encrypted(t.administrators, "totp_secret", ADMINISTRATOR_SECRETS),
    Encrypted(t.administrators, "totp_pending", ADMINISTRATOR_SECRETS),
    Encrypted(t.console_sso, "client_secret", ADMINISTRATOR_SECRETS),
    Encrypted(t.notification_subscriptions, "secret", NOTIFICATION_SECRETS),
)
"""Everything the master key protects at rest: a new encrypted column is one more line."""


def fernet(master: bytes, purpose: str) -> Fernet:
    """The cipher of ``purpose`` (what ``systems.secrets.CredentialCipher`` uses)."""
    return Fernet(base64.urlsafe_b64encode(derive_key(master, purpose)))


def check_value(master: bytes) -> str:
    """The master key's check value: HMAC-SHA256 of a fixed label, hex."""
    key = derive_key(master, "master key check")
    return hmac.new(key, _LABEL, hashlib.sha256).hexdigest()


def maintenance() -> Context:
    return Context.system("maintenance", tenant=ANY_TENANT)


def sample(tx: Transaction) -> tuple[Encrypted, str] | None:
    """One stored encrypted value (the first found), with its column."""
    for column in ENCRYPTED:
        query = select(column.table.c[column.column]).where(*column.where()).limit(1)
        found = tx.execute(tx.scoped(query, column.table)).scalar()
        if found is not None:
            return column, str(found)
    return None


def decrypts(master: bytes, column: Encrypted, token: str) -> bool:
    try:
        fernet(master, column.purpose).decrypt(token.encode("ascii"))
    except (InvalidToken, ValueError):
        return False
    return True


class MasterKey:
    """A node's master key against the database's check value. ``source``: where the key
    came from, for the messages (PROVISOR_SECRET_KEY, or the key file's path)."""

    def __init__(self, db: Database, master: bytes, source: str, data_dir: Path) -> None:
        self.db = db
        self._master = master
        self.source = source
        self.data_dir = data_dir
        self.check = check_value(master)

    def verify(self) -> None:
        """Refuse (MasterKeyError) a key that is not the database's. A database without a
        check value gets this key's, once a stored encrypted value (if any) decrypts with
        it; of two nodes writing it at once, the second finds the first's."""
        with self.db.read(maintenance()) as tx:
            stored, rotating = store.value(tx, CHECK), store.value(tx, NEXT)
        if stored is None:
            with self.db.write(maintenance()) as tx:
                found = sample(tx)
                if found is not None and not decrypts(self._master, *found):
                    raise MasterKeyError(self._refused(f"it cannot decrypt {found[0].name}"))
                store.put_first(tx, CHECK, self.check)
                stored = store.value(tx, CHECK)
        if rotating is not None:
            raise MasterKeyError(
                "A master key rotation is under way (provisor keys rotate stopped before it "
                "ended): run provisor keys rotate again, with the same options, to finish it."
            )
        if stored is None or not hmac.compare_digest(stored, self.check):
            raise MasterKeyError(
                self._refused("the database recorded another key at its first start")
            )

    def state(self) -> str | None:
        """None when the key is the database's, else why not (readiness)."""
        with self.db.read(maintenance()) as tx:
            stored, rotating = store.value(tx, CHECK), store.value(tx, NEXT)
        if rotating is not None:
            return "a master key rotation is under way"
        if stored is None:
            return "the database has no check value yet (provisor serve or init writes it)"
        if not hmac.compare_digest(stored, self.check):
            return f"this node's master key ({self.source}) is not the database's"
        return None

    def _refused(self, why: str) -> str:
        message = (
            f"This node's master key ({self.source}) is not the installation's: {why}. Give every "
            "node the installation's key: copy <data-dir>/secret.key from the first node, or "
            "set PROVISOR_SECRET_KEY to it on every node."
        )
        if (self.data_dir / NEW_KEY_FILE).is_file():
            message += (
                f" {self.data_dir / NEW_KEY_FILE} exists: if provisor keys rotate stopped "
                "before it ended, run it again to finish."
            )
        return message
