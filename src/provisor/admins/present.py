"""Administrators as the admin API's JSON (``/api/v1/administrators``): never a password's
hash nor a second factor's secret; a password only in the answer that made it."""

from __future__ import annotations

from typing import Any

from provisor.admins.model import Administrator


def administrator(admin: Administrator) -> dict[str, Any]:
    return {
        "id": admin.id,
        "name": admin.name,
        "role": admin.role.value,
        "origin": admin.origin,
        "hasPassword": admin.has_password,
        "totpEnabled": admin.totp_enabled,
        "created": admin.created,
        "lastLogin": admin.last_login,
    }


def page(admins: list[Administrator], count: int) -> dict[str, Any]:
    """A page of ``count`` administrators (``admins`` may hold one more: then ``next`` is the
    ``after`` of the next page)."""
    shown = admins[:count]
    more = len(admins) > count
    return {
        "items": [administrator(a) for a in shown],
        "next": shown[-1].name if more and shown else None,
    }


def with_password(admin: Administrator, password: str) -> dict[str, Any]:
    """An administrator with the password just generated, shown this once."""
    return {**administrator(admin), "password": password}
