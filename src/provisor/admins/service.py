"""The AdministratorService: administrators' accounts, passwords, second factor, console
sessions and single sign-on.

Management (create, change, delete, reset) is an administrator's (``admin``); looking is a
viewer's too (``view``). What concerns the signed-in person alone (their own password, their
second factor, signing out everywhere) is every administrator's, whatever the role. Signing in
(``authenticate``, ``check_code``, ``open_session``, ``session``) happens before there is an
actor, so it takes the tenant the request addressed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import unicodedata
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher

from provisor.admins import store
from provisor.admins.model import (
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    Administrator,
    Role,
    Session,
    SsoSettings,
)
from provisor.admins.oidc import issuer_problem
from provisor.auth.passwords import hash_secret, verify_secret
from provisor.context import (
    DEFAULT_TENANT,
    INSTALLATION,
    ActorKind,
    Context,
    Permission,
    new_request_id,
    requires,
)
from provisor.errors import AuthenticationError, InputError, NotFoundError, PermissionDeniedError
from provisor.metrics import instruments as metrics
from provisor.storage.database import Database, Transaction
from provisor.systems.secrets import CredentialCipher
from provisor.timestamps import format_datetime, now

INITIAL_FILE = "initial-administrator.json"
INITIAL_NAME = "admin"
PENDING = "pending"  # a session's method while the second factor is still to come
PENDING_SECONDS = 300
TOUCH_SECONDS = 60.0  # a session's last_seen is written at most this often
TOTP_ISSUER = "provisor"
PAGE_SIZE = 50
WRONG = "Wrong name or password."


def _key(name: str) -> str:
    return unicodedata.normalize("NFKC", name.strip()).casefold()


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


RESERVED_NAMES = frozenset({"new", "sso"})  # console paths beside /administrators/<name>


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an administrator's (local or from single sign-on), or None:
    printable characters only (no control, format or zero-width ones that would let a name
    look like another), no markup characters, not a reserved word."""
    if not name.strip():
        return "An administrator needs a name."
    if len(name) > MAX_NAME_LENGTH:
        return f"An administrator's name has at most {MAX_NAME_LENGTH} characters."
    if any(c in "<>\"'`" or (unicodedata.category(c)[0] in "CZ" and c != " ") for c in name):
        return (
            "An administrator's name has printable characters only (no control or invisible "
            "characters, quotes, < or >)."
        )
    if _key(name) in RESERVED_NAMES:
        return f"{name.strip()!r} is reserved: choose another name."
    return None


def managing_role(tenant: str) -> Role:
    """The role that manages a scope's administrators: ``operator`` in the installation,
    ``administrator`` in a tenant (at least one always remains)."""
    return Role.OPERATOR if tenant == INSTALLATION else Role.ADMINISTRATOR


def role_problem(tenant: str, role: Role) -> str | None:
    """Why ``role`` is not one of ``tenant``'s scope, or None: the installation has operators
    only, a tenant administrators and viewers."""
    if tenant == INSTALLATION:
        return None if role is Role.OPERATOR else "The installation's people are operators."
    if role is Role.OPERATOR:
        return "An operator belongs to the installation, not to a tenant: administrator or viewer."
    return None


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be an administrator's, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"A password has at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"A password has at most {MAX_PASSWORD_LENGTH} characters."
    return None


def new_password() -> str:
    return secrets.token_urlsafe(18)


class AdministratorService:
    """Administrators and their console sessions, in the database."""

    def __init__(
        self,
        db: Database,
        cipher: CredentialCipher,
        hasher: PasswordHasher,
        *,
        idle_seconds: float,
        absolute_seconds: float,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.hasher = hasher
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self._decoy = hash_secret(secrets.token_urlsafe(16), hasher)  # unknown names cost as much
        self._touched: dict[str, float] = {}

    # -- management ---------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def listing(
        self, ctx: Context, *, after: str = "", count: int = PAGE_SIZE, search: str = ""
    ) -> list[Administrator]:
        """A page of administrators by name (``after``: the last name of the previous page)."""
        with self.db.read(ctx) as tx:
            rows = store.page(tx, after=_key(after), count=count, search=_key(search))
        return [store.administrator(row) for row in rows]

    @requires(Permission.VIEW)
    def show(self, ctx: Context, name: str) -> Administrator:
        with self.db.read(ctx) as tx:
            return store.administrator(self._row(tx, name))

    @requires()
    def create(
        self, ctx: Context, name: str, role: Role, password: str | None = None
    ) -> tuple[Administrator, str]:
        """A local administrator; returns it and its password (generated when not given:
        shown once)."""
        problem = (
            _name_problem(name)
            or role_problem(ctx.tenant, role)
            or (password_problem(password) if password else None)
        )
        if problem:
            raise InputError(problem)
        password = password or new_password()
        admin_id = str(uuid.uuid4())
        with self.db.write(ctx) as tx:
            store.insert_administrator(tx, self._new_row(admin_id, name, role, "local", password))
            tx.audit("administrator.create", name.strip(), {"role": role.value})
            return store.administrator(store.find_by_id(tx, admin_id)), password

    def _new_row(
        self, admin_id: str, name: str, role: Role, origin: str, password: str | None
    ) -> dict[str, object]:
        return {
            "id": admin_id,
            "name": name.strip(),
            "name_key": _key(name),
            "role": role.value,
            "origin": origin,
            "password_hash": hash_secret(password, self.hasher) if password else None,
            "created": now(),
        }

    @requires()
    def set_role(self, ctx: Context, name: str, role: Role) -> Administrator:
        if problem := role_problem(ctx.tenant, role):
            raise InputError(problem)
        keeper = managing_role(ctx.tenant)
        with self.db.write(ctx) as tx:
            row = self._row(tx, name)
            if Role(row.role) is keeper and role is not keeper:
                self._keep_one(tx, f"take the {keeper.value} role from", keeper)
            store.change(tx, row.id, role=role.value)
            store.delete_sessions_of(tx, row.id)  # sign in again with the new role
            tx.audit("administrator.role", row.name, {"role": role.value})
            return store.administrator(store.find_by_id(tx, row.id))

    @requires()
    def reset_password(self, ctx: Context, name: str, password: str | None = None) -> str:
        """Set a new password (generated when not given: returned once) and end the
        administrator's sessions."""
        if password and (problem := password_problem(password)):
            raise InputError(problem)
        password = password or new_password()
        with self.db.write(ctx) as tx:
            row = self._row(tx, name)
            if row.origin != "local":
                raise InputError(f"{row.name} signs in with single sign-on: no password to set.")
            store.change(tx, row.id, password_hash=hash_secret(password, self.hasher))
            store.delete_sessions_of(tx, row.id)
            tx.audit("administrator.password.reset", row.name)
        return password

    @requires()
    def reset_second_factor(self, ctx: Context, name: str) -> None:
        """Remove an administrator's second factor (a lost authenticator)."""
        with self.db.write(ctx) as tx:
            row = self._row(tx, name)
            store.change(tx, row.id, totp_secret=None, totp_pending=None, totp_last_step=None)
            store.delete_sessions_of(tx, row.id)
            tx.audit("administrator.totp.reset", row.name)

    @requires()
    def delete(self, ctx: Context, name: str) -> None:
        with self.db.write(ctx) as tx:
            row = self._row(tx, name)
            keeper = managing_role(ctx.tenant)
            if Role(row.role) is keeper:
                self._keep_one(tx, "delete", keeper)
            store.remove(tx, row.id)
            tx.audit("administrator.delete", row.name)

    @requires()
    def end_sessions(self, ctx: Context, name: str) -> int:
        """Sign an administrator out everywhere; returns how many sessions ended."""
        with self.db.write(ctx) as tx:
            row = self._row(tx, name)
            ended = store.delete_sessions_of(tx, row.id)
            tx.audit("administrator.sessions.end", row.name, {"sessions": ended})
        return ended

    def _row(self, tx: Transaction, name: str) -> Any:
        row = store.find(tx, _key(name))
        if row is None:
            raise NotFoundError(f"No administrator named {name[:80]!r}.")
        return row

    def _keep_one(self, tx: Transaction, action: str, role: Role) -> None:
        if store.count_role(tx, role) <= 1:
            raise InputError(
                f"Cannot {action} the last {role.value} of this "
                f"{'installation' if role is Role.OPERATOR else 'tenant'}: make another "
                f"{role.value} first."
            )

    # -- the signed-in administrator's own -------------------------------------------------------

    def _own(self, ctx: Context) -> Any:
        if ctx.actor.kind is not ActorKind.ADMINISTRATOR:
            raise PermissionDeniedError("Only a signed-in administrator has a password here.")
        with self.db.read(ctx) as tx:
            return self._row(tx, ctx.actor.name)

    def me(self, ctx: Context) -> Administrator:
        """The signed-in administrator (any role)."""
        return store.administrator(self._own(ctx))

    def change_own_password(self, ctx: Context, current: str, new: str) -> None:
        row = self._own(ctx)
        if not row.password_hash or not verify_secret(row.password_hash, current):
            raise InputError("The current password is wrong.")
        if problem := password_problem(new):
            raise InputError(problem)
        with self.db.write(ctx) as tx:
            store.change(tx, row.id, password_hash=hash_secret(new, self.hasher))
            store.delete_sessions_of(tx, row.id)  # a stolen session ends with the old password
            tx.audit("administrator.password.change", ctx.actor.name)

    def begin_second_factor(self, ctx: Context) -> tuple[str, str]:
        """A new TOTP secret to confirm with a code: (secret, otpauth:// URI). Not while a
        second factor is on: turning it off (with a code) comes first."""
        row = self._own(ctx)
        if row.totp_secret:
            raise InputError("Your second factor is on: turn it off with a code first.")
        secret = pyotp.random_base32()
        with self.db.write(ctx) as tx:
            store.change(tx, row.id, totp_pending=self.cipher.encrypt(secret))
        uri = pyotp.TOTP(secret).provisioning_uri(name=ctx.actor.name, issuer_name=TOTP_ISSUER)
        return secret, uri

    def pending_second_factor(self, ctx: Context) -> tuple[str, str] | None:
        """The secret being set up and its otpauth:// URI (to show again until a code
        confirms it), or None."""
        row = self._own(ctx)
        if not row.totp_pending:
            return None
        secret = self.cipher.decrypt(row.totp_pending)
        uri = pyotp.TOTP(secret).provisioning_uri(name=ctx.actor.name, issuer_name=TOTP_ISSUER)
        return secret, uri

    def confirm_second_factor(self, ctx: Context, code: str) -> None:
        row = self._own(ctx)
        pending = row.totp_pending
        if not pending:
            raise InputError("Start the second factor's set-up first.")
        secret = self.cipher.decrypt(pending)
        step = _matching_step(secret, code, None)
        if step is None:
            raise InputError("That code is not the authenticator's current one: try again.")
        with self.db.write(ctx) as tx:
            store.change(
                tx,
                row.id,
                totp_secret=pending,
                totp_pending=None,
                totp_last_step=step,
            )
            store.delete_sessions_of(tx, row.id)
            tx.audit("administrator.totp.enable", ctx.actor.name)

    def disable_second_factor(self, ctx: Context, code: str) -> None:
        row = self._own(ctx)
        if not row.totp_secret or not self._code_ok(ctx.tenant, row, code):
            raise InputError("That code is not the authenticator's current one.")
        with self.db.write(ctx) as tx:
            store.change(tx, row.id, totp_secret=None, totp_last_step=None)
            store.delete_sessions_of(tx, row.id)
            tx.audit("administrator.totp.disable", ctx.actor.name)

    def end_own_sessions(self, ctx: Context) -> int:
        """Sign the signed-in administrator out everywhere (this session included)."""
        row = self._own(ctx)
        with self.db.write(ctx) as tx:
            ended = store.delete_sessions_of(tx, row.id)
            tx.audit("administrator.sessions.end", ctx.actor.name, {"sessions": ended})
        return ended

    # -- signing in ----------------------------------------------------------------------------

    def authenticate(self, tenant: str, name: str, password: str) -> Administrator:
        """The administrator whose name and password these are; AuthenticationError (the
        same message whatever was wrong) otherwise. Costs one Argon2 check either way."""
        ctx = Context.system("console", tenant=tenant)
        with self.db.read(ctx) as tx:
            row = store.find(tx, _key(name)) if len(name) <= MAX_NAME_LENGTH else None
        stored = row.password_hash if row is not None and row.password_hash else self._decoy
        ok = len(password) <= MAX_PASSWORD_LENGTH and verify_secret(stored, password)
        if row is None or not row.password_hash or not ok:
            metrics.failed_login("administrator", "password")
            raise AuthenticationError(WRONG)
        return store.administrator(row)

    def check_code(self, tenant: str, admin_id: str, code: str) -> bool:
        """Whether ``code`` is the administrator's current TOTP code (each accepted once)."""
        ctx = Context.system("console", tenant=tenant)
        with self.db.read(ctx) as tx:
            row = store.find_by_id(tx, admin_id)
        ok = row is not None and row.totp_secret is not None and self._code_ok(tenant, row, code)
        if not ok:
            metrics.failed_login("administrator", "code")
        return ok

    def _code_ok(self, tenant: str, row: Any, code: str) -> bool:
        secret = self.cipher.decrypt(row.totp_secret)
        step = _matching_step(secret, code, row.totp_last_step)
        if step is None:
            return False
        ctx = Context.system("console", tenant=tenant)
        with self.db.write(ctx) as tx:
            fresh = store.find_by_id(tx, row.id)
            if fresh.totp_last_step is not None and fresh.totp_last_step >= step:
                return False  # used meanwhile
            store.change(tx, row.id, totp_last_step=step)
        return True

    def open_session(
        self,
        tenant: str,
        admin: Administrator,
        method: str,
        *,
        address: str = "",
        request_id: str | None = None,
    ) -> tuple[str, Session]:
        """A new session for ``admin`` (``method``: password, totp, sso, or ``pending`` while
        the second factor is due); returns the cookie's token and the session. A sign-in is
        audited with the browser's ``address`` and the ``request_id``."""
        token = secrets.token_urlsafe(32)
        moment = datetime.now(UTC)
        seconds = PENDING_SECONDS if method == PENDING else self.absolute_seconds
        values = {
            "id": _token_id(token),
            "administrator_id": admin.id,
            "csrf": secrets.token_urlsafe(32),
            "method": method,
            "created": format_datetime(moment),
            "last_seen": format_datetime(moment),
            "expires": format_datetime(moment + timedelta(seconds=seconds)),
        }
        ctx = Context(admin.actor(), tenant, request_id or new_request_id(), address)
        with self.db.write(ctx) as tx:
            store.insert_session(tx, values)
            if method != PENDING:
                store.change(tx, admin.id, last_login=values["created"])
                tx.audit("administrator.signin", admin.name, {"method": method})
        found = replace(admin, last_login=str(values["created"]))
        return token, Session(
            id=str(values["id"]),
            tenant=tenant,
            administrator=found,
            csrf=str(values["csrf"]),
            method=method,
            created=str(values["created"]),
            last_seen=str(values["last_seen"]),
            expires=str(values["expires"]),
        )

    def session(self, tenant: str, token: str) -> Session | None:
        """The live session of a cookie's token, or None (unknown, idle too long, or past its
        absolute end: then it is deleted)."""
        if not token or len(token) > 128:
            return None
        session_id = _token_id(token)
        ctx = Context.system("console", tenant=tenant)
        with self.db.read(ctx) as tx:
            row = store.session(tx, session_id)
        if row is None:
            return None
        moment = datetime.now(UTC)
        idle_end = moment - timedelta(seconds=self.idle_seconds)
        if row.expires < format_datetime(moment) or row.last_seen < format_datetime(idle_end):
            with self.db.write(ctx) as tx:
                store.delete_session(tx, session_id)
            return None
        clock = time.monotonic()
        if clock - self._touched.get(session_id, 0.0) > TOUCH_SECONDS:
            self._touched[session_id] = clock
            if len(self._touched) > 10_000:
                self._touched.clear()
            with self.db.write(ctx) as tx:
                store.touch_session(tx, session_id, format_datetime(moment))
        return Session(
            id=session_id,
            tenant=tenant,
            administrator=store.administrator(row),
            csrf=row.csrf,
            method=row.method,
            created=row.session_created,
            last_seen=row.last_seen,
            expires=row.expires,
        )

    def close_session(self, tenant: str, token: str, *, hashed: bool = False) -> None:
        session_id = token if hashed else _token_id(token)
        with self.db.write(Context.system("console", tenant=tenant)) as tx:
            store.delete_session(tx, session_id)
        self._touched.pop(session_id, None)

    def purge_sessions(self, ctx: Context) -> int:
        """Delete ended sessions (maintenance)."""
        moment = datetime.now(UTC)
        idle = moment - timedelta(seconds=self.idle_seconds)
        with self.db.write(ctx) as tx:
            return store.delete_expired_sessions(tx, format_datetime(moment), format_datetime(idle))

    # -- single sign-on --------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def sso_settings(self, ctx: Context) -> SsoSettings | None:
        """The tenant's OpenID Connect provider (its secret only for provisor's own use: the
        adapters show ``public()``)."""
        with self.db.read(ctx) as tx:
            return store.sso(tx, self.cipher.decrypt)

    def provider(self, tenant: str) -> SsoSettings | None:
        """The tenant's provider, for signing in (before there is an actor)."""
        with self.db.read(Context.system("console", tenant=tenant)) as tx:
            return store.sso(tx, self.cipher.decrypt)

    @requires()
    def set_sso(self, ctx: Context, settings: SsoSettings) -> SsoSettings:
        """Store the tenant's provider; an empty client secret keeps the stored one."""
        problem = _sso_problem(settings)
        if problem:
            raise InputError(problem)
        with self.db.write(ctx) as tx:
            secret = settings.client_secret
            if not secret:
                stored = store.sso(tx, self.cipher.decrypt)
                if stored is None:
                    raise InputError("The client secret is required.")
                secret = stored.client_secret
            settings = replace(settings, client_secret=secret, updated=now())
            store.put_sso(tx, settings, self.cipher.encrypt(secret))
            tx.audit("console.sso.set", settings.issuer[:255], {"clientId": settings.client_id})
        return settings

    @requires()
    def clear_sso(self, ctx: Context) -> None:
        with self.db.write(ctx) as tx:
            if not store.delete_sso(tx):
                raise NotFoundError("Single sign-on is not configured for this tenant.")
            tx.audit("console.sso.clear", "sso")

    def sso_login(
        self, tenant: str, issuer: str, subject: str, name: str, role: Role
    ) -> Administrator:
        """The administrator of an SSO identity: made on first sign-in, its role refreshed
        from the provider's claim on each. A local administrator of the same name is not
        taken over (ConflictError's message says so)."""
        key = hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()  # whole, any length
        problem = _name_problem(name)
        if problem:
            raise AuthenticationError(
                f"The provider's name for you cannot be an administrator's here: {problem}"
            )
        ctx = Context.system("console", tenant=tenant)
        with self.db.write(ctx) as tx:
            row = store.find_by_subject(tx, key)
            if row is None:
                clash = store.find(tx, _key(name))
                if clash is not None:
                    raise AuthenticationError(
                        f"An administrator named {name[:80]!r} already exists in provisor: ask "
                        "an administrator to rename or delete it before signing in with single "
                        "sign-on."
                    )
                admin_id = str(uuid.uuid4())
                values = self._new_row(admin_id, name, role, "sso", None)
                store.insert_administrator(tx, {**values, "subject": key})
                tx.audit("administrator.create", name, {"role": role.value, "origin": "sso"})
            else:
                admin_id = row.id
                if row.role != role.value:
                    store.change(tx, admin_id, role=role.value)
                    tx.audit("administrator.role", row.name, {"role": role.value})
            return store.administrator(store.find_by_id(tx, admin_id))

    # -- the first administrator ---------------------------------------------------------------

    def ensure_initial(self, data_dir: Path, tenant: str = DEFAULT_TENANT) -> Path | None:
        """When the tenant has no administrator, create ``admin`` with a generated password
        and write it, once, to a 0600 file (``initial-administrator.json``)."""
        ctx = Context.system("maintenance", tenant=tenant)
        with self.db.read(ctx) as tx:
            if store.count(tx):
                return None
        _admin, password = self.create(ctx, INITIAL_NAME, Role.ADMINISTRATOR)
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / INITIAL_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"name": INITIAL_NAME, "password": password, "console": "/console"}, handle)
            handle.write("\n")
        os.chmod(path, 0o600)
        return path


def _matching_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step (of the current one and its neighbours) whose code ``code`` is, if it is
    later than ``last_step``."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = int(time.time()) // totp.interval
    for step in (current, current - 1, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _sso_problem(settings: SsoSettings) -> str | None:
    problem = issuer_problem(settings.issuer)
    if problem is not None:
        return f"The issuer is the provider's URL (https://...): {problem}."
    if not settings.client_id.strip():
        return "The client id is required."
    if not settings.role_claim.strip():
        return "Name the claim that holds the console role (e.g. groups)."
    if not settings.administrator_values and not settings.viewer_values:
        return "Give at least one claim value for the administrator or the viewer role."
    if not settings.label.strip() or len(settings.label) > 64:
        return "The button's label has 1 to 64 characters."
    if "openid" not in settings.scopes.split():
        return "The scopes must include openid."
    return None
