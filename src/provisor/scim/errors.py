"""SCIM protocol errors (RFC 7644 §3.12), each with its HTTP status and ``scimType``, and
each also the generic error of :mod:`provisor.errors` it specialises (input, not found,
conflict). A failed If-Match is the generic ``PreconditionFailedError`` (412).

SCIMError
├── InvalidFilterError       400 invalidFilter
├── InvalidSyntaxError       400 invalidSyntax
├── InvalidPathError         400 invalidPath
├── InvalidValueError        400 invalidValue
├── MutabilityError          400 mutability
├── NoTargetError            400 noTarget
├── TooManyError             400 tooMany
├── InvalidVersionError      400 invalidVers
├── ForbiddenError           403
├── ResourceNotFoundError    404
│   └── MemberNotFoundError  404 (a member named in the request, not the resource)
├── MethodNotAllowedError    405
├── UniquenessError          409 uniqueness
└── TooLargeError            413 tooLarge
"""

from __future__ import annotations

from typing import Any, ClassVar

from provisor.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    ProvisorError,
)

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    """A SCIM error message (RFC 7644 §3.12)."""
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return body


class SCIMError(ProvisorError):
    """The SCIM request failed."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None

    def to_dict(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.scim_type)


class InvalidFilterError(SCIMError, InputError):
    """The filter syntax is invalid or the attribute and comparison combination is not supported."""

    scim_type = "invalidFilter"


class InvalidSyntaxError(SCIMError, InputError):
    """The request body could not be parsed or does not follow the SCIM message syntax."""

    scim_type = "invalidSyntax"


class InvalidPathError(SCIMError, InputError):
    """The path attribute is invalid or malformed."""

    scim_type = "invalidPath"


class InvalidValueError(SCIMError, InputError):
    """A required value is missing, or a value is not compatible with the attribute type."""

    scim_type = "invalidValue"


class MutabilityError(SCIMError, InputError):
    """The operation would modify a read-only or immutable attribute."""

    scim_type = "mutability"


class NoTargetError(SCIMError, InputError):
    """The path did not yield an attribute or attribute value that could be operated on."""

    scim_type = "noTarget"


class TooManyError(SCIMError, InputError):
    """The request would return more results than the service provider allows."""

    scim_type = "tooMany"


class InvalidVersionError(SCIMError, InputError):
    """The protocol version in the request is not supported."""

    scim_type = "invalidVers"


class UniquenessError(SCIMError, ConflictError):
    """One or more unique attribute values are already in use."""

    status = 409
    scim_type = "uniqueness"


class TooLargeError(SCIMError, InputError):
    """The request is larger than the service provider accepts."""

    status = 413
    scim_type = "tooLarge"


class ForbiddenError(SCIMError):
    """The request is not permitted (RFC 7644 §3.12 gives 403 no scimType)."""

    status = 403


class ResourceNotFoundError(SCIMError, NotFoundError):
    """The resource does not exist."""

    status = 404


class MemberNotFoundError(ResourceNotFoundError):
    """A group member named in the request is no user or group: the request is wrong, the
    group addressed may well exist."""


class MethodNotAllowedError(SCIMError):
    """This endpoint does not support the HTTP method."""

    status = 405

    def __init__(self, message: str | None = None, allow: tuple[str, ...] = ("GET", "HEAD")):
        super().__init__(message)
        self.allow = allow  # the methods the endpoint does support (the Allow header)


class NotImplementedSCIMError(SCIMError):
    """The service provider does not support this request."""

    status = 501
