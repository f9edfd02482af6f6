"""Signing in to the console with the tenant's OpenID Connect provider: the flow's start and
finish (:mod:`.oidc`), the administrator of the identity, and the settings' discovery test.

The login state travels in a cookie sealed with a key of the tenant's own (derived from the
installation's), so a state started at one tenant cannot finish at another. An identity whose
role claim maps to no console role is refused; otherwise the administrator of that subject is
made on the first sign-in and its role follows the claim (``AdministratorService.sso_login``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import anyio.to_thread

from provisor.admins.model import Administrator, SsoSettings
from provisor.admins.oidc import (
    Discovery,
    OidcClient,
    Provider,
    issuer_problem,
    open_sealed,
    seal,
)
from provisor.admins.service import AdministratorService
from provisor.auth.keys import derive_key
from provisor.context import Context, requires
from provisor.errors import AuthenticationError, InputError


@dataclass(frozen=True, slots=True)
class Started:
    """A sign-in under way: where the browser goes, and the cookie it keeps meanwhile."""

    url: str
    sealed: str


def provider_of(settings: SsoSettings) -> Provider:
    return Provider(
        issuer=settings.issuer,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        role_claim=settings.role_claim,
        administrator_values=settings.administrator_values,
        viewer_values=settings.viewer_values,
        scopes=settings.scopes,
    )


class SsoService:
    """Single sign-on for the console's administrators."""

    def __init__(self, administrators: AdministratorService, client: OidcClient, key: bytes):
        self.administrators = administrators
        self.client = client
        self.key = key  # the installation's; each tenant's is derived from it

    def _key(self, tenant: str) -> bytes:
        return derive_key(self.key, f"console sso login state of {tenant}")

    async def _provider(self, tenant: str) -> Provider:
        settings = await anyio.to_thread.run_sync(self.administrators.provider, tenant)
        if settings is None:
            raise AuthenticationError("Single sign-on is not configured for this tenant.")
        return provider_of(settings)

    async def start(self, tenant: str, redirect_uri: str) -> Started:
        """Begin signing in at the tenant's provider; ``redirect_uri`` is the callback's."""
        provider = await self._provider(tenant)
        url, state = await self.client.authorization_url(provider, redirect_uri)
        return Started(url, seal(self._key(tenant), state))

    async def finish(
        self, tenant: str, redirect_uri: str, sealed: str, params: Mapping[str, str]
    ) -> Administrator:
        """The administrator the provider's callback signs in (AuthenticationError with a
        message for the sign-in page otherwise)."""
        state = open_sealed(self._key(tenant), sealed)
        provider = await self._provider(tenant)
        identity = await self.client.finish(provider, redirect_uri, state, params)
        if identity.role is None:
            raise AuthenticationError(
                f"{identity.name[:80]} may not use the console: the identity provider's "
                f"{provider.role_claim[:80]!r} claim holds none of the values that grant a "
                "console role."
            )
        return await anyio.to_thread.run_sync(
            self.administrators.sso_login,
            tenant,
            identity.issuer,
            identity.subject,
            identity.name,
            identity.role,
        )

    @requires()
    async def discover(self, ctx: Context, issuer: str) -> Discovery:
        """Read a provider's discovery document and keys' address ("Test discovery");
        InputError says why it cannot be used."""
        problem = issuer_problem(issuer.strip())
        if problem is not None:
            raise InputError(f"The issuer cannot be used: {problem}.")
        try:
            return await self.client.discover(issuer.strip(), fresh=True)
        except AuthenticationError as exc:
            raise InputError(exc.message) from exc
