"""Bundle templates: configuration documents shipped with provisor (``bundles/<name>.json``)
that set a tenant up for a common scenario, credentials left to enter.

A template is a configuration document with a ``bundle`` object (``name``, ``title``,
``description``); plan and apply take it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import orjson

from provisor.errors import NotFoundError

FOLDER = "bundles"


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleInfo:
    """A template as listed: what it sets up, without its document."""

    name: str
    title: str
    description: str
    systems: tuple[tuple[str, str, str], ...]  # (name, connector type, role)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "systems": [{"name": n, "type": t, "role": r} for n, t, r in self.systems],
        }


def _files() -> dict[str, Traversable]:
    folder = resources.files("provisor.configuration").joinpath(FOLDER)
    return {
        entry.name.removesuffix(".json"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".json") and entry.is_file()
    }


def bundles() -> list[BundleInfo]:
    """Every template, by name."""
    found = []
    for name in sorted(_files()):
        document = bundle(name)
        about = document["bundle"]
        found.append(
            BundleInfo(
                name=name,
                title=str(about.get("title", name)),
                description=str(about.get("description", "")),
                systems=tuple(
                    (str(s["name"]), str(s["type"]), str(s["role"])) for s in document["systems"]
                ),
            )
        )
    return found


def bundle(name: str) -> dict[str, Any]:
    """A template's document; NotFoundError names the known ones."""
    files = _files()
    entry = files.get(name)
    if entry is None:
        known = ", ".join(sorted(files))
        raise NotFoundError(f"No bundle {name!r}; the bundles are {known}.")
    document: dict[str, Any] = orjson.loads(entry.read_bytes())
    return document
