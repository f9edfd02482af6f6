"""The context of every service call: which tenant, which actor, which request.

Adapters build it — the web layer from the authenticated caller and the request id, the CLI
for the local operator, the scheduler, workers, real-time and maintenance as system actors —
and services take it first. A service authorises with ``ctx.require(...)``; a method
decorated with :func:`requires` does so before it runs, and declares its permissions so that
an adapter can refuse a caller before it reads the request (authenticate, authorise, parse).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from provisor.errors import PermissionDeniedError

DEFAULT_TENANT = "default"
# The installation's own scope: its operators (technical users holding ``operator``), who
# manage tenants. No tenant can be named so (a tenant name is a DNS label).
INSTALLATION = "_installation"
# Every tenant at once: provisor's own work across tenants (due schedules, queued jobs, the
# TLS layer's trust, tenant deletion). Only system actors and operators get such a context.
ANY_TENANT = "*"
TENANT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
RESERVED_TENANT_NAMES = frozenset({"t", "www", "api", "operator", "admin", "static", "docs"})


def tenant_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a tenant, or None: a DNS label (lower-case letters, digits and
    inner hyphens, at most 63), not a reserved word."""
    if not TENANT_NAME.fullmatch(name):
        return (
            f"{name[:80]!r} is not a tenant name: use 1 to 63 lower-case letters, digits and "
            "hyphens, starting and ending with a letter or digit (it is a host name label)."
        )
    if name in RESERVED_TENANT_NAMES:
        return f"{name!r} is reserved: choose another tenant name."
    return None


class Permission(StrEnum):
    """What a technical user may do (spec §5.3, §6.3, §10.3); ``admin`` holds them all."""

    MANAGE_USERS = "manage_users"
    MANAGE_GROUPS = "manage_groups"
    PROXY_API = "proxy_api"
    REALTIME_API = "realtime_api"
    TENANT_ADMIN_API = "tenant_admin_api"
    # Read-only administration of a tenant: every operation of the admin API that only
    # reads (the console's viewer; a technical user that monitors).
    VIEW = "view"
    ADMIN = "admin"
    # The installation's operator (tenants): not held by a tenant's admin, only granted to
    # technical users of the installation scope.
    OPERATOR = "operator"
    # Reading the installation's metrics (GET /metrics): granted to technical users of the
    # installation scope (an operator may read them too), never held by a tenant's admin.
    METRICS = "metrics"


# The installation's permissions: held by its technical users, never by a tenant's (``admin``
# holds every other).
INSTALLATION_ONLY = frozenset({Permission.OPERATOR, Permission.METRICS})


def parse_permissions(names: Iterable[str]) -> frozenset[Permission]:
    """Permissions from their names; ValueError names the unknown ones."""
    wanted = {name.strip().lower() for name in names if name.strip()}
    known = {p.value for p in Permission}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(
            f"unknown permission(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return frozenset(Permission(name) for name in wanted)


class ActorKind(StrEnum):
    """Who acts: a technical user (a client of the APIs), a person administering the
    installation (the CLI's operator, a console user), or provisor itself."""

    CLIENT = "client"
    ADMINISTRATOR = "administrator"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """One who acts. ``name`` is recorded as the author of what it changes (a client id, an
    administrator's name, or ``scheduler``, ``realtime``, ``maintenance`` ...); ``system``
    confines a caller to one system's APIs (a client certificate attached to a system)."""

    kind: ActorKind
    name: str
    permissions: frozenset[Permission]
    system: str | None = None

    def allows(self, *any_of: Permission) -> bool:
        """Whether the actor holds one of ``any_of`` (``admin`` holds them all but
        ``operator`` and ``metrics``; none named: ``admin`` only)."""
        if any(p in self.permissions for p in any_of):
            return True
        return Permission.ADMIN in self.permissions and not INSTALLATION_ONLY & set(any_of)


ALL = frozenset({Permission.ADMIN, Permission.OPERATOR})


def refusal(actor: Actor, any_of: Iterable[Permission], action: str) -> str:
    """Why ``actor`` may not do ``action``: the permissions that would allow it (each once,
    ``admin`` last) and what to do about it."""
    allowing = [p.value for p in dict.fromkeys(any_of) if p is not Permission.ADMIN]
    if Permission.OPERATOR.value not in allowing:  # admin holds all but operator
        allowing.append(Permission.ADMIN.value)
    if len(allowing) == 1:
        needed, advice = f"the permission {allowing[0]}", "that permission"
    else:
        needed = f"one of the permissions {', '.join(allowing[:-1])} or {allowing[-1]}"
        advice = "one of these permissions"
    return (
        f"The {actor.kind.value} {actor.name} may not {action}: that needs {needed}. "
        f"Ask an administrator for a technical user with {advice}."
    )


def confined(system_id: str) -> str:
    """Why a caller whose certificate is attached to ``system_id`` may not make a call of
    another system, or of none."""
    return (
        f"This certificate is attached to system {system_id}: it may call only that system's "
        "API. For other calls, use a technical user's client id and secret, or a certificate "
        "attached to no system."
    )


def new_request_id() -> str:
    """32 random hex digits (as a UUID4's hex, without building a UUID)."""
    return os.urandom(16).hex()


@dataclass(frozen=True, slots=True)
class Context:
    """The tenant, the actor and the request id a service call is made for, and the
    address the request came from (the client's, behind trusted proxies; empty for
    provisor's own work and the local CLI): the audit log records it."""

    actor: Actor
    tenant: str = DEFAULT_TENANT
    request_id: str = field(default_factory=new_request_id)
    address: str = ""

    @classmethod
    def system(
        cls, name: str, *, tenant: str = DEFAULT_TENANT, request_id: str | None = None
    ) -> Context:
        """provisor acting on its own (``scheduler``, ``worker``, ``maintenance``...): it may
        do everything."""
        return cls(Actor(ActorKind.SYSTEM, name, ALL), tenant, request_id or new_request_id())

    @classmethod
    def administrator(
        cls, name: str, *, tenant: str = DEFAULT_TENANT, request_id: str | None = None
    ) -> Context:
        """A person administering the installation, such as the CLI's local operator (who
        holds the data folder and its master key, so every permission)."""
        actor = Actor(ActorKind.ADMINISTRATOR, name, ALL)
        return cls(actor, tenant, request_id or new_request_id())

    def as_system(self, name: str) -> Context:
        """provisor acting on its own (``name``) for this call's tenant and request: work done
        for an authorised call whose own rules are not the caller's (a back-end of
        provisor's, state that outlives the call)."""
        found = Context.system(name, tenant=self.tenant, request_id=self.request_id)
        return Context(found.actor, found.tenant, found.request_id, self.address)

    def in_tenant(self, tenant: str) -> Context:
        """This call's actor and request acting in ``tenant`` (an operator managing it,
        provisor's own work found across tenants)."""
        return Context(self.actor, tenant, self.request_id, self.address)

    @property
    def author(self) -> str:
        """The name recorded as who made a change or started a job."""
        return self.actor.name

    def allows(self, *any_of: Permission) -> bool:
        return self.actor.allows(*any_of)

    def require(self, *any_of: Permission, action: str = "do this") -> None:
        """PermissionDeniedError unless the actor holds one of ``any_of`` (none: admin); its
        message says who may not do ``action`` (a phrase after "may not"), which permissions
        would allow it, and what to do."""
        if not self.actor.allows(*any_of):
            raise PermissionDeniedError(refusal(self.actor, any_of, action))

    def require_system(self, system_id: str) -> None:
        """PermissionDeniedError when the actor is confined to another system than
        ``system_id`` (the system's canonical id)."""
        if self.actor.system is not None and self.actor.system != system_id:
            raise PermissionDeniedError(confined(self.actor.system))


S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")

PERMISSIONS_ATTRIBUTE = "__provisor_permissions__"


def requires(
    *any_of: Permission,
) -> Callable[[Callable[Concatenate[S, Context, P], R]], Callable[Concatenate[S, Context, P], R]]:
    """Declare that a service method needs one of ``any_of`` (none named: ``admin``): the
    call checks ``ctx.require(*any_of)`` before the method runs, and adapters read the
    declaration with :func:`permissions_of` to refuse a caller before parsing its request."""

    def decorate(
        method: Callable[Concatenate[S, Context, P], R],
    ) -> Callable[Concatenate[S, Context, P], R]:
        action = f"call {method.__qualname__}"
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def checked_async(self: S, ctx: Context, *args: Any, **kwargs: Any) -> Any:
                ctx.require(*any_of, action=action)
                return await method(self, ctx, *args, **kwargs)

            setattr(checked_async, PERMISSIONS_ATTRIBUTE, any_of)
            return checked_async  # type: ignore[return-value]

        @functools.wraps(method)
        def checked(self: S, ctx: Context, /, *args: P.args, **kwargs: P.kwargs) -> R:
            ctx.require(*any_of, action=action)
            return method(self, ctx, *args, **kwargs)

        setattr(checked, PERMISSIONS_ATTRIBUTE, any_of)
        return checked

    return decorate


def permissions_of(operation: Callable[..., Any]) -> tuple[Permission, ...]:
    """The permissions a :func:`requires` method declared (one of them is needed)."""
    found: tuple[Permission, ...] | None = getattr(operation, PERMISSIONS_ATTRIBUTE, None)
    if found is None:
        raise TypeError(f"{operation.__qualname__} declares no permission (use @requires)")
    return found


T = TypeVar("T")


class PerTenant(Generic[T]):
    """A cache with one value per tenant, built on first use by ``factory(tenant)``."""

    def __init__(self, factory: Callable[[str], T]) -> None:
        self._factory = factory
        self._values: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, ctx: Context) -> T:
        found = self._values.get(ctx.tenant)
        if found is not None:
            return found
        with self._lock:
            found = self._values.get(ctx.tenant)
            if found is None:
                found = self._values[ctx.tenant] = self._factory(ctx.tenant)
            return found

    def values(self) -> list[T]:
        """The values built so far (to close them)."""
        with self._lock:
            return list(self._values.values())
