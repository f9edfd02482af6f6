"""Transformation documents (spec §1.2, §1.3): reading, checking and compiling them.

A document is JSON with optional ``/* */`` comments. ``%property%`` placeholders in its
strings take the system's property values (one pass; an unknown key becomes ``null``, as in
SAP, in values and conditions). A placeholder of a property that is not set in a name — a
path, a variable, an attribute a function works on — is a problem: it would name the
attribute ``null`` (decision 0017). Checking reports every problem at once, each with its
location; a document with a problem is never compiled, so it can be neither saved nor run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from provisor.errors import InvalidTransformationError
from provisor.transform import syntax as x
from provisor.transform.conditions import compile_condition, compile_reader
from provisor.transform.functions import FunctionCall, check_call
from provisor.transform.grammar import ExpressionSyntaxError, parse_path
from provisor.transform.jsonpath import Writer
from provisor.transform.paths import Reader, Test

ANY_ENTITY = "*"  # a bare {"condition": ..., "mappings": [...]} applies to any entity type
ENTITY_KEYS = {"condition", "ignore", "skipOperations", "scimEntityEndpoint", "mappings"}
MAPPING_KEYS = {
    "sourcePath",
    "sourcePaths",
    "sourceVariable",
    "variablePath",
    "constant",
    "targetPath",
    "targetVariable",
    "type",
    "valueMappings",
    "defaultValue",
    "optional",
    "preserveArrayWithSingleElement",
    "condition",
    "ignore",
    "scope",
    "functions",
    "correlationAttribute",
    "hashing",
    "description",
}
TYPES = ("set", "remove", "rename", "valueMapping")
SCOPES = ("createEntity", "patchEntity", "deleteEntity")
SKIPPABLE = ("create", "update", "delete")
_PROPERTY = re.compile(r"%([A-Za-z0-9_.\-]+)%")
UNSET = "null"  # what SAP puts for a property that is not set
# Mapping keys, and function parameters, whose strings name something (a path, a variable,
# an attribute): an unset property there is a problem, not the name "null".
NAMING_KEYS = (
    "sourcePath",
    "sourcePaths",
    "targetPath",
    "variablePath",
    "sourceVariable",
    "targetVariable",
)
NAMING_PARAMETERS = (
    "applyOnAttribute",
    "applyOnJsonAttribute",
    "assignToAttribute",
    "inputAttributes",
    "outputAttribute",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mapping:
    index: int
    type: str = "set"
    source_path: str | None = None
    source: Reader | None = None
    source_definite: bool = True
    source_paths: tuple[Reader, ...] = ()
    source_variable: str | None = None
    variable_path: Reader | None = None
    has_constant: bool = False
    constant: Any = None
    target_path: str | None = None
    target: Writer | None = None
    target_variable: str | None = None
    value_mappings: tuple[tuple[tuple[Any, ...], Any], ...] = ()
    has_default: bool = False
    default: Any = None
    optional: bool = False
    preserve_array: bool = False
    condition: Test | None = None
    condition_text: str | None = None
    ignore: bool = False
    scope: str | None = None
    functions: tuple[FunctionCall, ...] = ()
    correlation: bool = False
    hashing: bool = True

    @property
    def generated(self) -> bool:
        """True when functions alone make the value (no source, variable or constant)."""
        return (
            self.type == "set"
            and self.source is None
            and self.source_variable is None
            and not self.has_constant
        )

    @property
    def label(self) -> str:
        if self.type in ("remove", "rename"):
            return f"mapping #{self.index} ({self.type} {self.target_path})"
        source = (
            self.source_path
            or (f"variable {self.source_variable}" if self.source_variable else None)
            or ("constant" if self.has_constant else "functions")
        )
        target = self.target_path or (
            f"variable {self.target_variable}" if self.target_variable else "-"
        )
        return f"mapping #{self.index} ({self.type}: {source} -> {target})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    name: str
    condition: Test | None = None
    condition_text: str | None = None
    ignore: bool = False
    skip_operations: frozenset[str] = frozenset()
    endpoint: str | None = None
    mappings: tuple[Mapping, ...] = ()


def strip_comments(text: str) -> str:
    """Remove ``/* ... */`` comments outside of JSON strings."""
    if "/*" not in text:
        return text
    out: list[str] = []
    i, in_string = 0, False
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if char == '"':
                in_string = False
            i += 1
        elif char == '"':
            in_string = True
            out.append(char)
            i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def substitute(value: Any, properties: dict[str, str]) -> Any:
    """Replace ``%key%`` in every string (keys included): one pass, keys not set -> 'null'."""
    if isinstance(value, str):
        if "%" not in value:
            return value
        return _PROPERTY.sub(lambda m: _property(properties, m.group(1)), value)
    if isinstance(value, list):
        return [substitute(item, properties) for item in value]
    if isinstance(value, dict):
        return {substitute(k, properties): substitute(v, properties) for k, v in value.items()}
    return value


def _property(properties: dict[str, str], key: str) -> str:
    value = properties.get(key)
    return UNSET if value is None else str(value)


def unset_names(data: dict[str, Any], properties: dict[str, str]) -> list[str]:
    """Problems: placeholders of properties not set where they would name something — a
    path, a variable, an attribute a function works on, an object key, a path inside a
    condition — located as the compiler locates problems."""
    problems: list[str] = []
    bare = isinstance(data.get("mappings"), list)
    for name, section in ({ANY_ENTITY: data} if bare else data).items():
        where = "document" if name == ANY_ENTITY else name
        _unset_in(f"{where} (section name)", name, properties, problems)
        if not isinstance(section, dict):
            continue
        _unset_in(
            f"{where}.condition", _condition_names(section.get("condition")), properties, problems
        )
        mappings = section.get("mappings")
        for index, mapping in enumerate(mappings if isinstance(mappings, list) else []):
            if isinstance(mapping, dict):
                _unset_in_mapping(f"{where}.mappings[{index}]", mapping, properties, problems)
    return problems


def _unset_in_mapping(
    at: str, mapping: dict[str, Any], properties: dict[str, str], problems: list[str]
) -> None:
    for key in NAMING_KEYS:
        _unset_in(f"{at}.{key}", mapping.get(key), properties, problems)
    _unset_in(f"{at}.condition", _condition_names(mapping.get("condition")), properties, problems)
    for key in ("constant", "defaultValue", "valueMappings"):
        _unset_in(f"{at}.{key} (a key)", _keys(mapping.get(key)), properties, problems)
    calls = mapping.get("functions")
    for number, call in enumerate(calls if isinstance(calls, list) else []):
        if isinstance(call, dict):
            here = f"{at}.functions[{number}]"
            for key in NAMING_PARAMETERS:
                _unset_in(f"{here}.{key}", call.get(key), properties, problems)
            names = _condition_names(call.get("condition"))
            _unset_in(f"{here}.condition", names, properties, problems)


def _unset_in(where: str, value: Any, properties: dict[str, str], problems: list[str]) -> None:
    for key in sorted(placeholders(value)):
        if properties.get(key) is None:
            problems.append(
                f"{where}: the property {key} is not set, so %{key}% would name the "
                f"attribute {UNSET!r}; set {key} on the system"
            )


_NAME_IN_CONDITION = re.compile(r"(?:[.]|\[\s*['\"]?)(%[A-Za-z0-9_.\-]+%)")


def _condition_names(text: Any) -> list[str]:
    """The placeholders of a condition that are (part of) a path: after ``.`` or ``[``; the
    ones in quoted or regex literals are values (``'%key%' === 'null'`` tests an unset one)."""
    return _NAME_IN_CONDITION.findall(text) if isinstance(text, str) else []


def _keys(value: Any) -> list[str]:
    """Every object key inside a JSON value."""
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def placeholders(value: Any) -> set[str]:
    """The keys of every ``%key%`` placeholder in a document's strings (keys included)."""
    if isinstance(value, str):
        return set(_PROPERTY.findall(value)) if "%" in value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(item) for item in value))
    if isinstance(value, dict):
        return set().union(*(placeholders(k) | placeholders(v) for k, v in value.items()))
    return set()


def read_document(source: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """The JSON object of a document given as text (comments allowed) or already decoded."""
    if isinstance(source, dict):
        return source
    text = source.decode("utf-8") if isinstance(source, bytes) else source
    try:
        data = orjson.loads(strip_comments(text))
    except orjson.JSONDecodeError as exc:
        raise InvalidTransformationError([f"document: not valid JSON ({exc})"]) from exc
    if not isinstance(data, dict):
        raise InvalidTransformationError(["document: a transformation is a JSON object"])
    return data


def compile_document(
    source: str | bytes | dict[str, Any], properties: dict[str, str] | None = None
) -> dict[str, Entity]:
    """Check and compile a document; InvalidTransformationError lists every problem."""
    raw = read_document(source)
    problems = unset_names(raw, properties or {})
    data = substitute(raw, properties or {})
    if "mappings" in data and isinstance(data.get("mappings"), list):
        sections = {ANY_ENTITY: data}
    else:
        sections = data
    entities: dict[str, Entity] = {}
    for name, section in sections.items():
        where = "document" if name == ANY_ENTITY else name
        entity = _entity(name, section, where, problems)
        if entity is not None:
            entities[name] = entity
    if problems:
        raise InvalidTransformationError(problems)
    return entities


def _flag(
    raw: dict[str, Any], key: str, where: str, problems: list[str], *, strings: bool = False
) -> bool:
    value = raw.get(key, False)
    if isinstance(value, bool):
        return value
    if strings and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    problems.append(f"{where}.{key}: expected true or false, got {value!r}")
    return False


def _condition(raw: dict[str, Any], where: str, problems: list[str]) -> Test | None:
    text = raw.get("condition")
    if text is None:
        return None
    if not isinstance(text, str):
        problems.append(f"{where}.condition: expected a string")
        return None
    try:
        return compile_condition(text)
    except ValueError as exc:
        problems.append(f"{where}.condition: {exc} in {text!r}")
        return None


def _entity(name: str, raw: Any, where: str, problems: list[str]) -> Entity | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: an entity section is a JSON object")
        return None
    before = len(problems)
    for key in sorted(set(raw) - ENTITY_KEYS):
        problems.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(ENTITY_KEYS))})")
    condition = _condition(raw, where, problems)
    ignore = _flag(raw, "ignore", where, problems, strings=True)
    skip = raw.get("skipOperations", [])
    if not isinstance(skip, list) or any(op not in SKIPPABLE for op in skip):
        problems.append(f"{where}.skipOperations: a list of {', '.join(SKIPPABLE)}")
        skip = []
    endpoint = raw.get("scimEntityEndpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        problems.append(f"{where}.scimEntityEndpoint: expected a string such as 'Users'")
    raw_mappings = raw.get("mappings", [])
    mappings: list[Mapping] = []
    if not isinstance(raw_mappings, list):
        problems.append(f"{where}.mappings: expected a list of mappings")
    else:
        for index, item in enumerate(raw_mappings):
            mapping = _mapping(index, item, f"{where}.mappings[{index}]", problems)
            if mapping is not None:
                mappings.append(mapping)
    if len(problems) > before:
        return None
    return Entity(
        name=name,
        condition=condition,
        condition_text=raw.get("condition"),
        ignore=ignore,
        skip_operations=frozenset(skip),
        endpoint=endpoint,
        mappings=tuple(mappings),
    )


def _reader(text: Any, where: str, problems: list[str]) -> tuple[Reader | None, bool]:
    if not isinstance(text, str):
        problems.append(f"{where}: expected a JSONPath string")
        return None, True
    try:
        path = parse_path(text)
        return compile_reader(path), path.definite
    except (ExpressionSyntaxError, ValueError) as exc:
        problems.append(f"{where}: {exc} in {text!r}")
        return None, True


def _mapping(index: int, raw: Any, where: str, problems: list[str]) -> Mapping | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a mapping is a JSON object")
        return None
    before = len(problems)
    for key in sorted(set(raw) - MAPPING_KEYS):
        problems.append(f"{where}.{key}: unknown mapping key")
    kind = raw.get("type", "set")
    if kind not in TYPES:
        problems.append(f"{where}.type: one of {', '.join(TYPES)}, not {kind!r}")
    fields: dict[str, Any] = {"index": index, "type": kind}

    if "sourcePath" in raw:
        fields["source_path"] = raw["sourcePath"]
        fields["source"], fields["source_definite"] = _reader(
            raw["sourcePath"], f"{where}.sourcePath", problems
        )
    if "sourcePaths" in raw:
        paths = raw["sourcePaths"]
        if not isinstance(paths, list) or not paths:
            problems.append(f"{where}.sourcePaths: a non-empty list of JSONPaths")
        else:
            readers = [
                _reader(p, f"{where}.sourcePaths[{i}]", problems)[0] for i, p in enumerate(paths)
            ]
            fields["source_paths"] = tuple(r for r in readers if r is not None)
        if kind != "valueMapping":
            problems.append(f'{where}.sourcePaths: only with "type": "valueMapping"')
    if "sourceVariable" in raw:
        if not isinstance(raw["sourceVariable"], str) or not raw["sourceVariable"]:
            problems.append(f"{where}.sourceVariable: a variable name")
        fields["source_variable"] = raw["sourceVariable"]
    if "variablePath" in raw:
        if "sourceVariable" not in raw:
            problems.append(f"{where}.variablePath: goes with sourceVariable")
        fields["variable_path"] = _reader(raw["variablePath"], f"{where}.variablePath", problems)[0]
    if "constant" in raw:
        fields["has_constant"], fields["constant"] = True, raw["constant"]
    if "targetPath" in raw:
        text = raw["targetPath"]
        fields["target_path"] = text
        if not isinstance(text, str):
            problems.append(f"{where}.targetPath: expected a JSONPath string")
        else:
            try:
                fields["target"] = Writer(text)
            except (ExpressionSyntaxError, ValueError) as exc:
                problems.append(f"{where}.targetPath: {exc} in {text!r}")
            else:
                steps = fields["target"].steps
                if kind == "rename" and not (steps and isinstance(steps[-1], x.Key)):
                    problems.append(f"{where}.targetPath: rename needs a path ending with a key")
    if "targetVariable" in raw:
        if not isinstance(raw["targetVariable"], str) or not raw["targetVariable"]:
            problems.append(f"{where}.targetVariable: a variable name")
        fields["target_variable"] = raw["targetVariable"]
    if "defaultValue" in raw:
        fields["has_default"], fields["default"] = True, raw["defaultValue"]
    for key, name in (
        ("optional", "optional"),
        ("preserveArrayWithSingleElement", "preserve_array"),
        ("correlationAttribute", "correlation"),
    ):
        fields[name] = _flag(raw, key, where, problems)
    fields["hashing"] = _flag({"hashing": raw.get("hashing", True)}, "hashing", where, problems)
    fields["ignore"] = _flag(raw, "ignore", where, problems, strings=True)
    fields["condition"] = _condition(raw, where, problems)
    fields["condition_text"] = raw.get("condition")
    scope = raw.get("scope")
    if scope is not None and scope not in SCOPES:
        problems.append(f"{where}.scope: one of {', '.join(SCOPES)}")
    fields["scope"] = scope
    functions = raw.get("functions", [])
    if not isinstance(functions, list):
        problems.append(f"{where}.functions: a list of functions")
        functions = []
    calls = [check_call(f, f"{where}.functions[{i}]", problems) for i, f in enumerate(functions)]
    fields["functions"] = tuple(c for c in calls if c is not None)
    if kind == "valueMapping":
        fields["value_mappings"] = _value_mappings(raw, where, problems)
        if "sourcePath" in raw and "sourcePaths" not in raw and fields.get("source"):
            fields["source_paths"] = (fields["source"],)
    if kind in TYPES:
        _check_shape(raw, kind, where, problems)
    if len(problems) > before:
        return None
    return Mapping(**fields)


def _value_mappings(raw: dict[str, Any], where: str, problems: list[str]) -> tuple[Any, ...]:
    rows = raw.get("valueMappings")
    inputs = len(raw["sourcePaths"]) if isinstance(raw.get("sourcePaths"), list) else 1
    if not isinstance(rows, list):
        problems.append(f"{where}.valueMappings: required with type valueMapping, a list")
        return ()
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "key" not in row or "mappedValue" not in row:
            problems.append(f"{where}.valueMappings[{i}]: an object with key and mappedValue")
            continue
        key = row["key"] if isinstance(row["key"], list) else [row["key"]]
        if len(key) != inputs:
            problems.append(
                f"{where}.valueMappings[{i}].key: {inputs} value(s), one per source path"
            )
            continue
        out.append((tuple(key), row["mappedValue"]))
    return tuple(out)


def _check_shape(raw: dict[str, Any], kind: str, where: str, problems: list[str]) -> None:
    sources = [k for k in ("sourcePath", "sourceVariable", "constant") if k in raw]
    targets = [k for k in ("targetPath", "targetVariable") if k in raw]
    if kind in ("remove", "rename"):
        if "targetPath" not in raw:
            problems.append(f"{where}.targetPath: required by type {kind}")
        if kind == "rename" and not isinstance(raw.get("constant"), str):
            problems.append(f"{where}.constant: the new name (a string) for type rename")
        return
    if kind == "valueMapping":
        if "sourcePaths" not in raw and "sourcePath" not in raw:
            problems.append(f"{where}.sourcePaths: required by type valueMapping")
    elif len(sources) > 1:
        problems.append(
            f"{where}: give one of sourcePath, sourceVariable and constant, "
            f"not {', '.join(sources)}"
        )
    elif not sources:
        generators = {
            f.get("function", f.get("type"))
            for f in raw.get("functions", [])
            if isinstance(f, dict)
        }
        if "randomPassword" not in generators:
            problems.append(f"{where}: needs a value: sourcePath, sourceVariable or constant")
    if not targets and not (raw.get("correlationAttribute") is True and "sourcePath" in raw):
        problems.append(f"{where}: needs a target: targetPath or targetVariable")
