"""A request's path as the routes see it: below its tenant's ``/t/<tenant>`` prefix."""

from __future__ import annotations

from starlette.types import Scope


def route_path(scope: Scope) -> str:
    """The request's path below its ``root_path`` (the tenant prefix, see
    :mod:`provisor.web.tenancy`): what the routes match and what decides the error format."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path
