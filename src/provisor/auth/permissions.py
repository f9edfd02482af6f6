"""Who is calling: the principal an authentication proves."""

from __future__ import annotations

from dataclasses import dataclass

from provisor.context import Actor, ActorKind, Permission


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: a technical user authenticated one way or another.

    ``method`` says how: ``basic`` (client id and secret), ``bearer`` (an OAuth token
    issued by /oauth2/token) or ``certificate`` (an mTLS client certificate attached to
    the technical user, or to a system: then ``system`` is that system's id and the
    principal may call only that system's proxy or real-time API). ``secret_id`` is the
    id of the secret that proved a ``basic`` principal, or that a ``bearer`` token was
    issued with.
    """

    client_id: str
    tenant: str  # the tenant whose technical user it is
    name: str
    permissions: frozenset[Permission]
    method: str
    system: str | None = None
    secret_id: str | None = None

    def actor(self) -> Actor:
        """The principal as the actor of a service call, named as the routes recorded it
        (``principal.name``: the client's name, ``cert_client_<fingerprint>``...)."""
        return Actor(ActorKind.CLIENT, self.name, self.permissions, self.system)
