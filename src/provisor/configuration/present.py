"""Plans and bundle templates as the admin API's JSON, which ``provisor config ... --json``
prints too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provisor.configuration.bundles import BundleInfo
from provisor.configuration.model import Plan


def plan(found: Plan) -> dict[str, Any]:
    """A plan: its fingerprint (``expect`` of apply), the counts by action, every change in
    the order apply makes them, the credentials to enter afterwards, warnings."""
    return {
        "fingerprint": found.fingerprint,
        "prune": found.prune,
        "applied": found.applied,
        "counts": found.counts(),
        "changes": [c.to_dict() for c in found.changes],
        "credentialsToEnter": found.credentials(),
        "warnings": list(found.warnings),
    }


def bundles(found: Sequence[BundleInfo]) -> dict[str, Any]:
    return {"items": [b.to_dict() for b in found], "total": len(found)}
