"""The default transformations of each connector type and role (spec §1.11), as data files."""

from __future__ import annotations

from importlib import resources

ROLES = ("read", "write", "proxy-read", "proxy-write")


def available() -> list[tuple[str, str]]:
    """The (connector type, role) pairs that have a default transformation."""
    folder = resources.files("provisor.transform").joinpath("defaults")
    pairs = []
    for entry in folder.iterdir():
        name = entry.name.removesuffix(".json")
        for role in sorted(ROLES, key=len, reverse=True):
            if name.endswith("-" + role):
                pairs.append((name[: -len(role) - 1], role))
                break
    return sorted(pairs)


def default_transformation(connector_type: str, role: str) -> str:
    """The text of the default transformation; KeyError when there is none."""
    if role not in ROLES:
        raise KeyError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    entry = resources.files("provisor.transform").joinpath(f"defaults/{connector_type}-{role}.json")
    if not entry.is_file():
        raise KeyError(f"no default {role} transformation for connector type {connector_type!r}")
    return entry.read_text()
