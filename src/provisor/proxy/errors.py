"""What goes wrong in a proxy request, as SCIM errors (RFC 7644 §3.12).

Connector errors are translated here (``connector_errors``); the HTTP layer only renders
``SCIMError``s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from provisor.connectors.base import (
    ConnectorError,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    InvalidId,
    RateLimited,
    Unsupported,
)
from provisor.scim.errors import (
    InvalidValueError,
    NotImplementedSCIMError,
    ResourceNotFoundError,
    SCIMError,
    UniquenessError,
)


class DisabledError(SCIMError):
    """The proxy system is disabled."""

    status = 503


class BackendFailedError(SCIMError):
    """The back-end of the proxy system failed or cannot be reached."""

    status = 502


class TransformationFailedError(SCIMError):
    """The proxy read transformation failed on what the back-end returned."""

    status = 500


class BackendBusyError(SCIMError):
    """The back-end asks to slow down."""

    status = 429


@contextmanager
def connector_errors(what: str) -> Iterator[None]:
    """Translate the connector errors raised inside into SCIM errors; ``what`` names the
    request in messages (``"GET Users/42"``)."""
    try:
        yield
    except EntityNotFound as exc:
        raise ResourceNotFoundError(f"{what}: not found in the back-end ({exc.message})") from exc
    except EntityConflict as exc:
        raise UniquenessError(f"{what}: {exc.message}") from exc
    except InvalidId as exc:  # refused before the back-end was asked
        raise InvalidValueError(f"{what}: {exc.message}") from exc
    except InvalidEntity as exc:
        raise InvalidValueError(f"{what}: the back-end refused it: {exc.message}") from exc
    except Unsupported as exc:
        raise NotImplementedSCIMError(f"{what}: {exc.message}") from exc
    except RateLimited as exc:
        raise BackendBusyError(f"{what}: {exc.message}") from exc
    except ConnectorError as exc:
        raise BackendFailedError(f"{what}: {exc.message}") from exc
