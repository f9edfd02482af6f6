"""What reaches each target of a job and what does not, for the job's outcome: the entity
types a target does not take while the source provides them, and what a target does not
declare (a SCIM service's /Schemas), left out of what is written to it (decision 0019)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from provisor.jobs.ledger import Run
from provisor.jobs.plan import Participant, Plan
from provisor.types import EntityType

SHOWN = 10  # paths named in the outcome; the others are counted


@dataclass
class _LeftOut:
    entities: int = 0
    paths: dict[str, None] = field(default_factory=dict)  # in the order first seen


class Coverage:
    """What the targets of one run did not take."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.notes: dict[str, str] = {}  # target id -> what could not be learned
        self.left_out: dict[tuple[str, str], _LeftOut] = defaultdict(_LeftOut)

    async def prepare(self, target: Participant) -> None:
        """Learn what a target accepts, once per run: before its first page is planned."""
        if target.id in self.run.ledger.discovered:
            return
        discovery = await target.connector.discover()
        self.run.ledger.discovered[target.id] = discovery.fingerprint
        if discovery.note:
            self.notes[target.id] = discovery.note

    def fit(self, target: Participant, entity_type: str, plan: Plan) -> None:
        """Leave out of a plan's document what the target does not declare, and say so in
        the plan's trace (and in the job's outcome at its end)."""
        if plan.document is None:
            return
        fitted = target.connector.fit(entity_type, plan.document)
        if not fitted.left_out:
            return
        plan.document, plan.left_out = fitted.entity, fitted.left_out
        left = self.left_out[(target.id, entity_type)]
        left.entities += 1
        left.paths.update(dict.fromkeys(fitted.left_out))
        if isinstance(plan.trace, list):
            plan.trace.append(
                {
                    "label": f"what {target.name} declares",
                    "status": "left out",
                    "detail": f"not declared by {target.name} ({self._switch(target)}=false "
                    "sends it)",
                    "value": list(fitted.left_out),
                }
            )

    def note(self, target: Participant) -> str | None:
        """What a target did not take in this run, in one sentence (a real-time log's)."""
        lines = [line for t, line in self._target_lines() if t is target]
        return " ".join(lines) or None

    def outcome(self) -> list[str]:
        """The sentences of the job's outcome: every target's, then the types not taken."""
        return [line for _, line in self._target_lines()] + self._ignored()

    def _target_lines(self) -> list[tuple[Participant, str]]:
        lines = []
        for target in self.run.targets:
            if target.id in self.notes:
                lines.append((target, f"Target {target.name}: {self.notes[target.id]}."))
            for entity_type in EntityType:
                left = self.left_out.get((target.id, entity_type))
                if left is None:
                    continue
                paths = list(left.paths)
                named = ", ".join(paths[:SHOWN])
                more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
                plural = "" if left.entities == 1 else "s"
                lines.append(
                    (
                        target,
                        f"Target {target.name} does not declare {named}{more}: left out of "
                        f"{left.entities:,} {entity_type}{plural} "
                        f"({self._switch(target)}=false sends them).",
                    )
                )
        return lines

    def _ignored(self) -> list[str]:
        lines = []
        for entity_type, read in self.run.ledger.runs.items():
            for target in self.run.targets:
                why = _not_taken(target, entity_type)
                if why:
                    lines.append(
                        f"No {entity_type}s written to {target.name}: {why} "
                        f"({read.read:,} read from {self.run.source.name})."
                    )
        return lines

    @staticmethod
    def _switch(target: Participant) -> str:
        return f"{target.prefix}.schema.discovery"


def _not_taken(target: Participant, entity_type: str) -> str | None:
    """Why a target takes no entities of a type, or None when it takes them."""
    section = target.transformation.entity(entity_type)
    if section is None:
        return f"its write transformation has no {entity_type} section"
    if section.ignore:
        return f'its write transformation ignores them ("{entity_type}": {{"ignore": true}})'
    if entity_type not in target.connector.capabilities.entity_types:
        return f"it holds no {entity_type}s"
    return None
