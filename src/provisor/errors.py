"""The exceptions provisor raises, in one tree.

    ProvisorError
    ├── ConfigError             bad settings (the server's configuration)
    │   └── MasterKeyError      the master key cannot decrypt the stored data (HTTP 500)
    ├── InputError              bad input to an operation: a request, a command's values (400)
    │   └── InvalidDocumentError  a configuration document has problems (all listed)
    ├── NotFoundError           a named thing does not exist
    ├── ConflictError           a unique name or value is taken
    │   └── PreconditionFailedError  the thing changed since it was read (If-Match)
    ├── StorageError            the database cannot be reached or used
    ├── InvalidTransformationError  a transformation document has problems (all listed)
    ├── TooManyRequestsError    over a rate budget (HTTP 429) or too busy (503): Retry-After
    └── AuthError
        ├── AuthenticationError no or bad credentials (HTTP 401)
        └── PermissionDeniedError  the caller lacks a permission (HTTP 403)

SCIM protocol errors live in :mod:`provisor.scim.errors` under ``SCIMError``, itself a
``ProvisorError``; each is also the generic error it specialises (``InvalidValueError`` is an
``InputError``, ``ResourceNotFoundError`` a ``NotFoundError``...). The class docstring is
the default message.
"""

from __future__ import annotations


class ProvisorError(Exception):
    """provisor failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class ConfigError(ProvisorError):
    """The configuration is invalid."""


class MasterKeyError(ConfigError):
    """The master key cannot decrypt the stored data: it is not the key the data was
    encrypted with."""


class InputError(ProvisorError):
    """The input is invalid."""


class InvalidDocumentError(InputError):
    """The configuration document is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"The configuration document has {len(problems)} problem(s): " + "; ".join(problems)
        )


class NotFoundError(ProvisorError):
    """Not found."""


class ConflictError(ProvisorError):
    """It already exists."""


class PreconditionFailedError(ConflictError):
    """It changed since it was read: read it again before changing it."""


class StorageError(ProvisorError):
    """The database could not be used."""


class InvalidTransformationError(ProvisorError):
    """The transformation is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("The transformation is invalid: " + "; ".join(problems))


class TooManyRequestsError(ProvisorError):
    """Too many requests: retry later."""

    def __init__(self, message: str, *, retry_after: int, status: int = 429) -> None:
        self.retry_after = retry_after
        self.status = status
        super().__init__(message)


class AuthError(ProvisorError):
    """Access denied."""


class AuthenticationError(AuthError):
    """Authentication is required: the credentials are missing or invalid."""


class PermissionDeniedError(AuthError):
    """The authenticated client lacks the permission this operation needs."""
