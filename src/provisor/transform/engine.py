"""Running a transformation on one entity (spec §1.9), with an optional trace.

``Transformation.apply`` never raises for any JSON input: every result is an outcome —
``Transformed``, ``Skipped``, ``Failed``, ``Ignored`` or ``Deleted``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from provisor.transform import javadate
from provisor.transform.conditions import expand
from provisor.transform.document import ANY_ENTITY, Entity, Mapping, compile_document
from provisor.transform.functions import Context, EntityIdResolver, FunctionError
from provisor.transform.jsonpath import MISSING, Env, drop_gaps
from provisor.types import Operation

DEFAULT_DATE_FORMAT = "yyyy-MM-dd HH:mm:ss.SSS"


@dataclass(frozen=True, slots=True)
class FunctionStep:
    """What one function of a mapping made of the value (``has_value`` false: it left none)."""

    function: str
    result: Any = None
    has_value: bool = True

    def to_dict(self) -> dict[str, Any]:
        if not self.has_value:
            return {"function": self.function, "noValue": True}
        return {"function": self.function, "result": self.result}


@dataclass(frozen=True, slots=True)
class TraceStep:
    """What one mapping did: applied, skipped (and why) or failed; what it read and wrote."""

    mapping: int
    label: str
    status: str
    detail: str = ""
    input: Any = None  # the value read (or the default), before the functions
    value: Any = None  # the value written
    functions: tuple[FunctionStep, ...] = ()  # each function's result, in order

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mapping": self.mapping, "label": self.label, "status": self.status}
        if self.detail:
            out["detail"] = self.detail
        if self.input is not None:
            out["input"] = self.input
        if self.functions:
            out["functions"] = [f.to_dict() for f in self.functions]
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True)
class Transformed:
    document: dict[str, Any]
    variables: dict[str, Any]
    operation: Operation
    soft_delete: bool = False  # a delete carried out as an update (deleteEntity mappings)
    trace: tuple[TraceStep, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str
    trace: tuple[TraceStep, ...] = ()
    operation: str | None = None  # set when skipOperations skipped it (create/update/delete)


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str
    mapping: int | None = None
    trace: tuple[TraceStep, ...] = ()


@dataclass(frozen=True, slots=True)
class Ignored:
    """The document does not process this entity type (no section, or ``ignore: true``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Deleted:
    """Delete the entity in the target: a delete with no ``deleteEntity`` mappings."""


Outcome = Transformed | Skipped | Failed | Ignored | Deleted


@dataclass(slots=True)
class _Run:
    entity: Entity
    source: Any
    output: dict[str, Any]
    env: Env
    context: Context
    operation: Operation
    steps: list[TraceStep] | None = field(default=None)

    def note(
        self,
        mapping: Mapping,
        status: str,
        detail: str = "",
        *,
        input: Any = None,
        value: Any = None,
        functions: list[FunctionStep] | None = None,
    ) -> None:
        if self.steps is not None:
            self.steps.append(
                TraceStep(
                    mapping.index,
                    mapping.label,
                    status,
                    detail,
                    None if input is None or input is MISSING else _copy(input),
                    None if value is None else _copy(value),
                    tuple(functions or ()),
                )
            )


class Transformation:
    """A compiled transformation document, for the properties of one system."""

    def __init__(
        self, source: str | bytes | dict[str, Any], properties: MappingType[str, str] | None = None
    ) -> None:
        self.properties = dict(properties or {})
        self.entities = compile_document(source, self.properties)
        text = source if isinstance(source, str | bytes) else json.dumps(source, default=str)
        texts = [text if isinstance(text, str) else text.decode(errors="replace")]
        # Formatting the date costs more than most mappings: only when something refers to it.
        self._dated = any("currentDate" in t for t in [*texts, *self.properties.values()])

    def entity(self, entity_type: str) -> Entity | None:
        return self.entities.get(entity_type) or self.entities.get(ANY_ENTITY)

    def apply(
        self,
        entity_type: str,
        entity: Any,
        *,
        operation: Operation | str = Operation.READ,
        variables: dict[str, Any] | None = None,
        resolver: EntityIdResolver | None = None,
        trace: bool = False,
        now: Callable[[], datetime] | None = None,
    ) -> Outcome:
        """Transform one entity.

        ``variables`` seeds the variables (entityIdTargetSystem, ...); ``resolver`` gives
        ``resolveEntityIds`` the operational data (without one, ids stay as they are).
        """
        operation = Operation(operation)
        section = self.entity(entity_type)
        if section is None:
            return Ignored(f"The transformation has no section for entity type {entity_type}.")
        if section.ignore:
            return Ignored(f"Entity type {entity_type} is ignored by the transformation.")
        seeded = dict(variables or {})
        if self._dated:
            seeded.setdefault("currentDate", self._current_date((now or _utcnow)()))
        env = Env(variables=seeded, properties=self.properties)
        run = _Run(
            entity=section,
            source=entity,
            output={},
            env=env,
            context=Context(source=entity, env=env, resolver=resolver, now=now),
            operation=operation,
            steps=[] if trace else None,
        )
        try:
            return self._apply(run)
        except RecursionError:
            return Failed("The entity is nested too deeply to be transformed.")

    def _current_date(self, moment: datetime) -> str:
        pattern = self.properties.get("ips.date.variable.format") or DEFAULT_DATE_FORMAT
        try:
            return javadate.format_java(moment, pattern)
        except ValueError:
            return javadate.format_java(moment, DEFAULT_DATE_FORMAT)

    def _apply(self, run: _Run) -> Outcome:
        section, operation = run.entity, run.operation
        trace = () if run.steps is None else run.steps
        if operation is Operation.DELETE:
            mappings = [m for m in section.mappings if m.scope == "deleteEntity"]
        else:
            if section.condition is not None and not section.condition(
                run.source, run.source, run.env
            ):
                return Skipped(f"Entity condition [{section.condition_text}] is not fulfilled")
            mappings = [m for m in section.mappings if _in_scope(m, operation)]
        skipped_op = {
            "create": "create",
            "update": "update",
            "patch": "update",
            "delete": "delete",
        }.get(operation.value)
        if skipped_op in section.skip_operations:
            return Skipped(
                f"Operation [{skipped_op}] is skipped in target transformation",
                operation=skipped_op,
            )
        if operation is Operation.DELETE and not mappings:
            return Deleted()
        for mapping in mappings:
            failure = self._run_mapping(run, mapping)
            if failure is not None:
                return Failed(failure, mapping.index, tuple(trace))
        if run.env.gaps:
            run.output = drop_gaps(run.output)
        return Transformed(
            document=run.output,
            variables={k: v for k, v in run.env.variables.items() if k != "currentDate"},
            operation=operation,
            soft_delete=operation is Operation.DELETE,
            trace=tuple(trace),
        )

    def _run_mapping(self, run: _Run, mapping: Mapping) -> str | None:
        """Run one mapping; the reason of a failure, or None."""
        if mapping.ignore:
            run.note(mapping, "skipped", "ignored")
            return None
        if mapping.condition is not None and not mapping.condition(run.source, run.source, run.env):
            run.note(mapping, "skipped", f"condition [{mapping.condition_text}] is not fulfilled")
            return None
        target = mapping.target
        if mapping.type == "remove":
            assert target is not None
            target.remove(run.output, run.env)
            run.note(mapping, "applied", "removed")
            return None
        if mapping.type == "rename":
            assert target is not None
            target.rename(run.output, str(mapping.constant), run.env)
            run.note(mapping, "applied", f"renamed to {mapping.constant}")
            return None
        value = self._value(run, mapping)
        if _absent(value) and not mapping.generated:
            if mapping.has_default:
                value = _expand(mapping.default, run.env)
            elif mapping.optional or (mapping.correlation and target is None):
                run.note(mapping, "skipped", "no source value (optional)")
                return None
            elif mapping.source_variable is not None:
                # A variable without a value, such as entityIdTargetSystem before a create.
                run.note(mapping, "skipped", f"variable {mapping.source_variable} has no value")
                return None
            else:
                reason = (
                    f"Mandatory value missing: {mapping.label} found no value at "
                    f"{mapping.source_path or mapping.source_variable or 'its source'}."
                )
                run.note(mapping, "failed", reason)
                return reason
        read = value
        # Each function's result, only when tracing (no cost otherwise).
        results: list[FunctionStep] | None = [] if run.steps is not None else None
        for call in mapping.functions:
            try:
                value = call.run(value, run.context)
            except FunctionError as exc:
                reason = f"{mapping.label}: function {call.spec.name} failed: {exc}"
                run.note(mapping, "failed", reason, input=read, functions=results)
                return reason
            if results is not None:
                results.append(_function_step(call.spec.name, value))
            if value is MISSING:
                break
        if value is MISSING:
            run.note(
                mapping, "skipped", "the functions left no value", input=read, functions=results
            )
            return None
        if isinstance(value, list) and len(value) == 1 and not mapping.preserve_array:
            value = value[0]
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if target is not None:
            target.write(run.output, _copy(value), run.env)
        if mapping.target_variable is not None:
            run.env.variables[mapping.target_variable] = value
        run.note(mapping, "applied", input=read, value=value, functions=results)
        return None

    def _value(self, run: _Run, mapping: Mapping) -> Any:
        if mapping.type == "valueMapping":
            keys = [_scalar(read(run.source, run.source, run.env)) for read in mapping.source_paths]
            if any(_absent(k) for k in keys):
                return MISSING
            for row, mapped in mapping.value_mappings:
                if all(_same(a, b) for a, b in zip(keys, row, strict=True)):
                    return _expand(mapped, run.env)
            return MISSING
        if mapping.has_constant:
            return _expand(mapping.constant, run.env)
        if mapping.source_variable is not None:
            value = run.env.variables.get(mapping.source_variable, MISSING)
            if mapping.variable_path is not None and value is not MISSING:
                value = mapping.variable_path(value, value, run.env)
            return value
        if mapping.source is not None:
            value = mapping.source(run.source, run.source, run.env)
            if not mapping.source_definite and value == []:
                return MISSING  # an indefinite path that matched nothing
            return value
        return None  # functions alone make the value (randomPassword)


def _function_step(name: str, value: Any) -> FunctionStep:
    if value is MISSING:
        return FunctionStep(name, has_value=False)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return FunctionStep(name, _copy(value))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _in_scope(mapping: Mapping, operation: Operation) -> bool:
    scope = mapping.scope
    if operation is Operation.PATCH:
        return scope == "patchEntity"
    if scope is None:
        return True
    return scope == "createEntity" and operation is Operation.CREATE


def _absent(value: Any) -> bool:
    return value is MISSING or value is None


def _scalar(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _same(value: Any, key: Any) -> bool:
    if value == key:
        return True
    return _text(value) == _text(key)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _expand(value: Any, env: Env) -> Any:
    """A constant with ``${var}`` expanded in its strings (copied: constants are shared)."""
    if isinstance(value, str):
        return expand(value, env)
    if isinstance(value, list):
        return [_expand(item, env) for item in value]
    if isinstance(value, dict):
        return {k: _expand(v, env) for k, v in value.items()}
    return value


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value (the output never shares objects with the input)."""
    if isinstance(value, dict | list):
        try:
            return orjson.loads(orjson.dumps(value))
        except TypeError:
            return _slow_copy(value)
    return value


def _slow_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _slow_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_slow_copy(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
