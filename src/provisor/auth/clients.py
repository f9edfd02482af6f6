"""Technical users ("system administrators"): create, change, delete, rotate, authenticate.

A client has a UUID client id, a name, permissions and up to two secrets (so a secret can be
rotated without downtime). Secrets are random, shown once and stored only as Argon2id
hashes. A client authenticates with its id and a secret (HTTP Basic, or the client
credentials grant of /oauth2/token, which returns a bearer token).

Managing clients is for administrators (``@requires()``: admin) and is audited (ids and
permission names, never a secret); listing and showing them (never a secret) needs ``view``.
A technical user cannot delete the last client holding ``admin``, nor take ``admin`` from it
(itself, since only an admin may manage clients): nobody could manage clients through the API
after it; the local operator recovers with ``provisor clients create --local``.

Authentication (``authenticate_secret``, ``verify_token``, ``token_principal``,
``quick_secret``, ``proven_secret``, ``cached``) takes no context: it makes the principal
that a call's context is built from. It takes the tenant the request addressed, and looks
the client up in that tenant only: another tenant's client id, secret or token proves
nothing there.

Permissions belong to a scope: a tenant's technical users may hold every permission but
``operator``; the installation's (``INSTALLATION``) hold ``operator`` only.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher

from provisor.auth import inbound, store
from provisor.auth.passwords import STANDARD, VerifiedSecrets, hash_secret
from provisor.auth.permissions import Principal
from provisor.auth.store import ClientRow, SecretRow
from provisor.auth.tokens import TokenClaims, TokenSigner
from provisor.context import (
    INSTALLATION,
    INSTALLATION_ONLY,
    ActorKind,
    Context,
    Permission,
    parse_permissions,
    requires,
)
from provisor.errors import AuthenticationError, ConflictError, InputError, NotFoundError
from provisor.storage.database import Database, Transaction
from provisor.timestamps import format_datetime, now

MAX_SECRETS = 2
MAX_DESCRIPTION = 2000
_KNOWN = {p.value for p in Permission}
INITIAL_ADMIN_FILE = "initial-admin.json"
INITIAL_ADMIN_NAME = "initial-admin"
INITIAL_OPERATOR_FILE = "initial-operator.json"
INITIAL_OPERATOR_NAME = "initial-operator"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A client id and a secret, as shown once to whoever created them."""

    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class ClientView:
    """A client with its secrets' metadata (the secrets' hashes are never shown)."""

    client: ClientRow
    secrets: list[SecretRow]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A bearer token, the permissions it grants and its lifetime in seconds."""

    access_token: str
    scope: frozenset[str]
    expires_in: int


class ScopeError(Exception):
    """The requested scope holds permissions the client does not have."""


class ClientService:
    """Technical users and how they prove who they are."""

    def __init__(
        self,
        db: Database,
        signer: TokenSigner,
        cache_seconds: float = 2.0,
        hasher: PasswordHasher = STANDARD,
    ) -> None:
        self.db = db
        self.signer = signer
        self.hasher = hasher  # how new secrets (and the decoys) are hashed
        self._verified = VerifiedSecrets()
        # (tenant, client id) -> (until, client, secrets)
        self._cache: dict[tuple[str, str], tuple[float, ClientRow | None, list[SecretRow]]] = {}
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._decoy_hashes: tuple[str, ...] | None = None

    # -- management ---------------------------------------------------------------------------

    @requires()
    def create(
        self,
        ctx: Context,
        name: str,
        permissions: list[str],
        *,
        description: str = "",
        expires_in_days: int | None = None,
    ) -> tuple[ClientRow, Credentials]:
        name = name.strip()
        if not name or len(name) > 255 or not name.isprintable():
            raise InputError("A client name is 1 to 255 printable characters.")
        client = ClientRow(
            id=str(uuid.uuid4()),
            name=name,
            description=_description(description),
            permissions=_permissions(ctx, permissions),
            created=now(),
        )
        secret, row = self._new_secret(expires_in_days)
        with self.db.write(ctx) as tx:
            store.insert_client(tx, client)
            store.insert_secret(tx, client.id, row)
            tx.audit("client.create", client.id, {"secret": row.id})
        return client, Credentials(client.id, secret)

    @requires()
    def update(
        self,
        ctx: Context,
        id_or_name: str,
        *,
        permissions: list[str] | None = None,
        description: str | None = None,
    ) -> ClientRow:
        """Change a client's permissions (all of them: the list replaces the old one) or its
        description; its secrets, tokens and certificates stay, and its calls get the new
        permissions at once (a bearer token's scope keeps only those the client still has).
        A technical user cannot take ``admin`` from the last client holding it."""
        if permissions is None and description is None:
            raise InputError("Give the permissions or the description to change.")
        perms = None if permissions is None else _permissions(ctx, permissions)
        text = None if description is None else _description(description)
        with self.db.write(ctx) as tx:
            client = store.find_client(tx, id_or_name)
            if client is None:
                raise NotFoundError(f"No client with id or name {id_or_name!r}.")
            changed = replace(
                client,
                permissions=client.permissions if perms is None else perms,
                description=client.description if text is None else text,
            )
            if (
                ctx.actor.kind is ActorKind.CLIENT
                and Permission.ADMIN.value not in changed.permissions
                and _last_admin(tx, client)
            ):
                raise ConflictError(
                    f"{client.name} is the last client with the admin permission: taking it "
                    "away would leave nobody to manage clients. Give another client admin "
                    "first."
                )
            store.update_client(
                tx, client.id, permissions=changed.permissions, description=changed.description
            )
            detail = {
                "permissions": list(changed.permissions),
                "descriptionChanged": changed.description != client.description,
            }
            tx.audit("client.update", client.id, detail)
        self._forget(ctx.tenant, client.id)
        return changed

    @requires(Permission.VIEW)
    def all(self, ctx: Context) -> list[ClientRow]:
        with self.db.read(ctx) as tx:
            return store.list_clients(tx)

    @requires(Permission.VIEW)
    def get(self, ctx: Context, id_or_name: str) -> ClientRow:
        return self.find(ctx, id_or_name)

    @requires(Permission.VIEW)
    def listing(self, ctx: Context) -> list[ClientView]:
        """Every client with its secrets' metadata, oldest first."""
        with self.db.read(ctx) as tx:
            return [ClientView(c, store.secrets_of(tx, c.id)) for c in store.list_clients(tx)]

    @requires(Permission.VIEW)
    def page(
        self, ctx: Context, *, search: str = "", offset: int = 0, limit: int = 50
    ) -> tuple[list[ClientView], int]:
        """A page of clients by name (``search``: part of the name, any case) with their
        secrets' metadata, and how many match in all."""
        with self.db.read(ctx) as tx:
            rows, total = store.page_clients(
                tx, search=search, offset=max(offset, 0), limit=max(min(limit, 500), 1)
            )
            return [ClientView(c, store.secrets_of(tx, c.id)) for c in rows], total

    @requires(Permission.VIEW)
    def show(self, ctx: Context, id_or_name: str) -> ClientView:
        """A client (id or name) with its secrets' metadata; NotFoundError."""
        with self.db.read(ctx) as tx:
            client = store.find_client(tx, id_or_name)
            if client is None:
                raise NotFoundError(f"No client with id or name {id_or_name!r}.")
            return ClientView(client, store.secrets_of(tx, client.id))

    def find(self, ctx: Context, id_or_name: str) -> ClientRow:
        """The client of an id or name, or NotFoundError (internal: no permission is
        checked; for services that attach things to clients, such as certificates)."""
        with self.db.read(ctx) as tx:
            client = store.find_client(tx, id_or_name)
        if client is None:
            raise NotFoundError(f"No client with id or name {id_or_name!r}.")
        return client

    @requires()
    def secrets_of(self, ctx: Context, client_id: str) -> list[SecretRow]:
        with self.db.read(ctx) as tx:
            return store.secrets_of(tx, client_id)

    @requires()
    def delete(self, ctx: Context, id_or_name: str) -> ClientRow:
        with self.db.write(ctx) as tx:
            client = store.find_client(tx, id_or_name)
            if client is None:
                raise NotFoundError(f"No client with id or name {id_or_name!r}.")
            if ctx.actor.kind is ActorKind.CLIENT and _last_admin(tx, client):
                raise ConflictError(
                    f"{client.name} is the last client with the admin permission: deleting "
                    "it would leave nobody to manage clients. Create another admin client "
                    "first."
                )
            inbound.revoke_inbound_of(tx, client_id=client.id, when=now())
            store.delete_client(tx, client.id)
            tx.audit("client.delete", client.id)
        self._forget(ctx.tenant, client.id)
        return client

    @requires()
    def rotate_secret(
        self,
        ctx: Context,
        id_or_name: str,
        *,
        keep_previous: bool = False,
        expires_in_days: int | None = None,
    ) -> tuple[ClientRow, Credentials]:
        """Issue a new secret. The previous one stays valid only with ``keep_previous``."""
        secret, row = self._new_secret(expires_in_days)
        with self.db.write(ctx) as tx:
            client = store.find_client(tx, id_or_name)
            if client is None:
                raise NotFoundError(f"No client with id or name {id_or_name!r}.")
            keep: set[str] = set()
            if keep_previous:
                keep = {s.id for s in store.secrets_of(tx, client.id)[: MAX_SECRETS - 1]}
            for removed in store.delete_secrets(tx, client.id, keep):
                tx.audit("client.secret.remove", client.id, {"secret": removed})
            store.insert_secret(tx, client.id, row)
            tx.audit("client.secret.add", client.id, {"secret": row.id})
        self._forget(ctx.tenant, client.id)
        return client, Credentials(client.id, secret)

    def ensure_initial_admin(self, data_dir: Path) -> Path | None:
        """When the default tenant has no client, create an admin client and write its
        credentials to a 0600 file (``initial-admin.json``).

        Returns the file's path when it was written, None when clients already existed.
        Bootstrap: it runs as provisor's ``maintenance``.
        """
        return self._ensure_initial(
            Context.system("maintenance"), data_dir, INITIAL_ADMIN_NAME, Permission.ADMIN
        )

    def ensure_initial_operator(self, data_dir: Path) -> Path | None:
        """When the installation has no operator, create one and write its credentials to a
        0600 file (``initial-operator.json``): who manages tenants."""
        ctx = Context.system("maintenance", tenant=INSTALLATION)
        return self._ensure_initial(ctx, data_dir, INITIAL_OPERATOR_NAME, Permission.OPERATOR)

    def _ensure_initial(
        self, ctx: Context, data_dir: Path, name: str, permission: Permission
    ) -> Path | None:
        with self.db.read(ctx) as tx:
            if store.count_clients(tx):
                return None
        client, creds = self.create(
            ctx,
            name,
            [permission.value],
            description="Created on first start; rotate its secret or replace it.",
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / (
            INITIAL_OPERATOR_FILE if permission is Permission.OPERATOR else INITIAL_ADMIN_FILE
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(
                {
                    "client_id": creds.client_id,
                    "client_secret": creds.client_secret,
                    "name": client.name,
                    "permissions": list(client.permissions),
                },
                handle,
                indent=2,
            )
            handle.write("\n")
        os.chmod(path, 0o600)
        return path

    def _new_secret(self, expires_in_days: int | None) -> tuple[str, SecretRow]:
        if expires_in_days is not None and expires_in_days < 1:
            raise InputError("A secret expires after one day or more.")
        secret = secrets.token_urlsafe(32)
        moment = datetime.now(UTC)
        expires = (
            format_datetime(moment + timedelta(days=expires_in_days)) if expires_in_days else None
        )
        row = SecretRow(
            id=str(uuid.uuid4()),
            secret_hash=hash_secret(secret, self.hasher),
            created=format_datetime(moment),
            expires=expires,
        )
        return secret, row

    # -- authentication -----------------------------------------------------------------------

    def lookup(self, tenant: str, client_id: str) -> tuple[ClientRow | None, list[SecretRow]]:
        """The client of ``tenant`` and its secrets, cached for a couple of seconds. An id
        that is no UUID (every client id is one) is nobody, without a query: it may hold
        anything, NUL too."""
        if not _is_uuid(client_id):
            return None, []
        key = (tenant, client_id)
        entry = self._cache.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1], entry[2]
        with self.db.read(Context.system("authentication", tenant=tenant)) as tx:
            client = store.find_client(tx, client_id)
            secret_rows = store.secrets_of(tx, client.id) if client else []
        if client is not None and client.id != client_id:
            client = None  # looked up by name: ids only
        with self._lock:
            self._cache.pop(key, None)  # to the end: the oldest entries go first
            self._cache[key] = (time.monotonic() + self._cache_seconds, client, secret_rows)
            while len(self._cache) > 10_000:  # a spray of unknown ids evicts only old entries
                del self._cache[next(iter(self._cache))]
        return client, secret_rows

    def cached(self, tenant: str, client_id: str) -> bool:
        entry = self._cache.get((tenant, client_id))
        return entry is not None and entry[0] > time.monotonic()

    def _forget(self, tenant: str, client_id: str) -> None:
        with self._lock:
            self._cache.pop((tenant, client_id), None)

    def forget_tenant(self, tenant: str) -> None:
        """Drop what is cached of a deleted tenant's clients."""
        with self._lock:
            for key in [key for key in self._cache if key[0] == tenant]:
                del self._cache[key]

    def quick_secret(self, tenant: str, client_id: str, secret: str) -> Principal | None:
        """The principal when caches alone prove the secret; None when that needs real work."""
        entry = self._cache.get((tenant, client_id))
        if entry is None or entry[0] <= time.monotonic():
            return None
        return self._proven(tenant, client_id, entry[1], entry[2], secret)

    def proven_secret(self, tenant: str, client_id: str, secret: str) -> Principal | None:
        """The principal when the secret was proven before (a database read at most, no
        Argon2); None when it must be checked."""
        client, secret_rows = self.lookup(tenant, client_id)
        return self._proven(tenant, client_id, client, secret_rows, secret)

    def _proven(
        self,
        tenant: str,
        client_id: str,
        client: ClientRow | None,
        rows: list[SecretRow],
        secret: str,
    ) -> Principal | None:
        if client is None:
            return None
        for row in _live(rows):
            if self._verified.known(client_id, row.secret_hash, secret):
                return _principal(tenant, client, frozenset(client.permissions), "basic", row.id)
        return None

    def authenticate_secret(self, tenant: str, client_id: str, secret: str) -> Principal:
        """The principal of a client id and secret, or AuthenticationError.

        A failure costs the same whether the id exists or not: the secret is always checked
        against ``MAX_SECRETS`` hashes, the client's unexpired ones padded with decoys (an
        unknown id is checked against decoys only), so the time taken does not tell which
        client ids exist.
        """
        client, secret_rows = self.lookup(tenant, client_id)
        checked = _live(secret_rows)[:MAX_SECRETS] if client is not None else []
        for row in checked:
            if self._verified.verify(client_id, row.secret_hash, secret) and client:
                return _principal(tenant, client, frozenset(client.permissions), "basic", row.id)
        for decoy in self._decoys()[len(checked) :]:
            self._verified.verify(client_id, decoy, secret)
        raise AuthenticationError("Invalid client credentials.")

    def _decoys(self) -> tuple[str, ...]:
        """Hashes of random secrets, made like real ones (same Argon2 parameters)."""
        with self._lock:
            if self._decoy_hashes is None:
                self._decoy_hashes = tuple(
                    hash_secret(secrets.token_urlsafe(32), self.hasher) for _ in range(MAX_SECRETS)
                )
            return self._decoy_hashes

    def verify_token(self, token: str) -> TokenClaims:
        claims = self.signer.verify(token)
        if claims is None:
            raise AuthenticationError("The bearer token is invalid or expired.")
        return claims

    def token_principal(self, tenant: str, claims: TokenClaims) -> Principal:
        """The principal of verified token claims in ``tenant``: the scope, less revoked
        permissions. A token dies with the secret it was issued for (rotated, removed or
        expired), and is worthless in another tenant than its own."""
        if claims.tenant != tenant:
            raise AuthenticationError("The bearer token was issued in another tenant.")
        client, secret_rows = self.lookup(tenant, claims.client_id)
        if client is None:
            raise AuthenticationError("The bearer token's client no longer exists.")
        if not any(row.id == claims.secret_id for row in _live(secret_rows)):
            raise AuthenticationError(
                "The bearer token was issued with a secret that is no longer valid."
            )
        return _principal(
            tenant, client, claims.scope & set(client.permissions), "bearer", claims.secret_id
        )

    def issue_token(self, principal: Principal, scope: str | None) -> IssuedToken:
        """A bearer token for a principal proven by a secret (the client credentials grant):
        the permissions of ``scope`` (space separated; all the client's without it)."""
        granted = frozenset(p.value for p in principal.permissions)
        if scope is not None and scope.strip():
            wanted = frozenset(scope.split())
            if not wanted <= granted:
                raise ScopeError(
                    f"Not granted to this client: {', '.join(sorted(wanted - granted))}."
                )
            granted = wanted
        if principal.secret_id is None:
            raise AuthenticationError("Only a client secret can obtain a bearer token.")
        token = self.signer.issue(
            principal.client_id, granted, principal.secret_id, principal.tenant
        )
        return IssuedToken(token, granted, self.signer.ttl)

    def certificate_principal(self, tenant: str, client_id: str) -> Principal:
        """The principal of a client of ``tenant`` proven by a certificate attached to it."""
        client, _ = self.lookup(tenant, client_id)
        if client is None:
            raise AuthenticationError("The technical user of this certificate no longer exists.")
        return _principal(tenant, client, frozenset(client.permissions), "certificate")


def _principal(
    tenant: str,
    client: ClientRow,
    permissions: frozenset[str],
    method: str,
    secret_id: str | None = None,
) -> Principal:
    return Principal(
        client_id=client.id,
        tenant=tenant,
        name=client.name,
        permissions=frozenset(Permission(p) for p in permissions if p in _KNOWN),
        method=method,
        secret_id=secret_id,
    )


def _permissions(ctx: Context, names: list[str]) -> tuple[str, ...]:
    """The permissions a client of the call's tenant may be given, sorted; InputError."""
    try:
        perms = parse_permissions(names)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if not perms:
        raise InputError("Give the client at least one permission.")
    if ctx.tenant == INSTALLATION and not perms <= INSTALLATION_ONLY:
        raise InputError(
            "The installation's technical users are operators and metrics readers: give the "
            "permissions operator or metrics only (a tenant's technical users are created in "
            "that tenant)."
        )
    if ctx.tenant != INSTALLATION and perms & INSTALLATION_ONLY:
        raise InputError(
            "The operator and metrics permissions belong to the installation's technical "
            "users, not to a tenant's."
        )
    return tuple(sorted(p.value for p in perms))


def _description(text: str) -> str:
    """A client's description: at most 2,000 characters; InputError."""
    if len(text) > MAX_DESCRIPTION:
        raise InputError(f"A client's description has at most {MAX_DESCRIPTION} characters.")
    return text


def _last_admin(tx: Transaction, client: ClientRow) -> bool:
    """Whether ``client`` is the only client holding ``admin``."""
    if Permission.ADMIN.value not in client.permissions:
        return False
    return not any(
        Permission.ADMIN.value in other.permissions and other.id != client.id
        for other in store.list_clients(tx)
    )


def _live(rows: list[SecretRow]) -> list[SecretRow]:
    """The secrets that have not expired."""
    current = now()
    return [row for row in rows if row.expires is None or row.expires > current]


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
