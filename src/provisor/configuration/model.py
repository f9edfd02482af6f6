"""What a plan is: the changes that would make a tenant's configuration the document's.

A plan lists every object the document or the tenant names, each with what applying would do
to it (``create``, ``update``, ``delete`` or ``unchanged``) and why, in the order ``apply``
takes them. Its fingerprint is a hash of the tenant's configuration and of the plan: applying
with ``expect`` refuses when either moved since the plan was shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

FORMAT = 1  # "provisorConfiguration": the version of the document's format


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"


class Kind(StrEnum):
    CUSTOM_SCHEMA = "customSchema"
    SYSTEM = "system"
    LINK = "link"
    TRANSFORMATION = "transformation"
    SCHEDULE = "schedule"


SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.UNCHANGED: "="}


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One object of the plan. ``name``: a system's or source's name, ``Target <- Source``
    for a link, ``System read`` for a transformation, the URN of a custom schema.
    ``credentials``: the credential keys of a system that must be entered after the apply."""

    action: Action
    kind: Kind
    name: str
    detail: str = ""
    credentials: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action.value,
            "kind": self.kind.value,
            "name": self.name,
            "detail": self.detail,
        }
        if self.credentials:
            out["credentialsToEnter"] = list(self.credentials)
        return out

    def line(self) -> str:
        """``+ create system "HR": detail`` (what the CLI prints)."""
        text = f'{SYMBOLS[self.action]} {self.action} {self.kind} "{self.name}"'
        return f"{text}: {self.detail}" if self.detail else text


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The changes, in the order apply makes them, and the plan's fingerprint."""

    changes: tuple[Change, ...]
    fingerprint: str
    prune: bool = False
    applied: bool = False
    warnings: tuple[str, ...] = field(default=())

    @property
    def pending(self) -> list[Change]:
        """What applying changes (everything but the unchanged)."""
        return [c for c in self.changes if c.action is not Action.UNCHANGED]

    def counts(self) -> dict[str, int]:
        return {a.value: sum(1 for c in self.changes if c.action is a) for a in Action}

    def credentials(self) -> dict[str, list[str]]:
        """The credential keys to enter, by system name."""
        return {
            c.name: list(c.credentials)
            for c in self.changes
            if c.kind is Kind.SYSTEM and c.credentials
        }
