"""A tenant's configuration over the admin API (``/api/v1/configuration``,
``/api/v1/bundles``): export, plan, apply, bundle templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

from provisor.remote.session import Session, path

API = "/api/v1"
Action = Literal["create", "update", "delete", "unchanged"]
ChangeKind = Literal["customSchema", "system", "link", "transformation", "schedule"]


class Change(TypedDict):
    """One object of a plan: what applying does to it, and why."""

    action: Action
    kind: ChangeKind
    name: str
    detail: str
    credentialsToEnter: NotRequired[list[str]]


class Counts(TypedDict):
    create: int
    update: int
    delete: int
    unchanged: int


class Plan(TypedDict):
    """A plan (``applied``: what apply did): its fingerprint, the changes in apply's order,
    the credential keys to enter by system name."""

    fingerprint: str
    prune: bool
    applied: bool
    counts: Counts
    changes: list[Change]
    credentialsToEnter: dict[str, list[str]]
    warnings: list[str]


class BundleSystem(TypedDict):
    name: str
    type: str
    role: str


class Bundle(TypedDict):
    """A bundle template as listed."""

    name: str
    title: str
    description: str
    systems: list[BundleSystem]


class BundleList(TypedDict):
    items: list[Bundle]
    total: int


class Configuration:
    """``remote.configuration``: the tenant's configuration as one document."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def export(self) -> dict[str, Any]:
        """The configuration document (credentials left out)."""
        found: dict[str, Any] = self._session.json("GET", f"{API}/configuration")
        return found

    def plan(self, document: Mapping[str, Any], *, prune: bool = False) -> Plan:
        """What applying ``document`` would change, with the plan's fingerprint."""
        found: Plan = self._session.json(
            "POST",
            f"{API}/configuration/plan",
            json=dict(document),
            params={"prune": "true" if prune else None},
        )
        return found

    def apply(
        self, document: Mapping[str, Any], *, prune: bool = False, expect: str | None = None
    ) -> Plan:
        """Apply ``document``; ``expect``: the fingerprint of the plan reviewed (409 when the
        configuration changed since)."""
        found: Plan = self._session.json(
            "POST",
            f"{API}/configuration/apply",
            json=dict(document),
            params={"prune": "true" if prune else None, "expect": expect},
        )
        return found

    def bundles(self) -> BundleList:
        found: BundleList = self._session.json("GET", f"{API}/bundles")
        return found

    def bundle(self, name: str) -> dict[str, Any]:
        """A bundle template's document."""
        found: dict[str, Any] = self._session.json("GET", path(f"{API}/bundles", name))
        return found
