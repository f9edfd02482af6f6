"""Signed, expiring OAuth 2.0 bearer tokens (JWT, HS256) for technical users."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

ISSUER = "provisor"
AUDIENCE = "provisor"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    client_id: str
    scope: frozenset[str]
    expires_at: int
    secret_id: str  # the secret the token was issued with: it dies with that secret
    tenant: str  # the tenant it was issued in: worthless in another


class TokenSigner:
    """Issues and verifies bearer tokens with a key derived from the master key."""

    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl = ttl_seconds

    def issue(self, client_id: str, scope: frozenset[str], secret_id: str, tenant: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(12),
            "scope": " ".join(sorted(scope)),
            "sid": secret_id,
            "ten": tenant,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a valid, unexpired token of ours; None for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iat", "sid", "ten"]},
                leeway=5,
            )
        except jwt.PyJWTError:
            return None
        return TokenClaims(
            client_id=str(claims["sub"]),
            scope=frozenset(str(claims.get("scope", "")).split()),
            expires_at=int(claims["exp"]),
            secret_id=str(claims["sid"]),
            tenant=str(claims["ten"]),
        )
