"""The roles of administrators (the console's people)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What an administrator may do: everything, read only, or the installation's tenants."""

    ADMINISTRATOR = "administrator"
    VIEWER = "viewer"
    OPERATOR = "operator"
