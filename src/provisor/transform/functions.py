"""The mapping functions of spec §1.6, their parameters and their checks.

Each function is ``apply(value, params, context) -> new value``. The parameters every
function takes — ``condition``, ``applyOnElements``, ``applyOnAttribute`` (old name
``applyOnJsonAttribute``) and ``assignToAttribute`` — are handled once, in ``FunctionCall``.
A function that cannot do its work raises FunctionError; the entity then fails.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

import regex

from provisor.transform import codes, javadate
from provisor.transform.conditions import compile_condition, compile_reader, expand
from provisor.transform.javaregex import compile_java, java_replacement
from provisor.transform.paths import MISSING, Env, Reader, Test
from provisor.types import EntityType


class FunctionError(Exception):
    """A function could not transform its value."""


class EntityIdResolver(Protocol):
    """Translates ids of a source system into the ids the same entities have in a target.

    Supplied by the job engine (operational data); ids it does not know are left out.
    """

    def resolve(
        self,
        ids: Sequence[str],
        *,
        entity_type: EntityType,
        source_system: str | None,
        target_system: str | None,
    ) -> dict[str, str]: ...


@dataclass(slots=True)
class Context:
    """What functions may use besides their value."""

    source: Any  # the input document
    env: Env
    resolver: EntityIdResolver | None = None
    now: Callable[[], datetime] | None = None


# -- parameter kinds ---------------------------------------------------------------------------

_KINDS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "text": lambda v: isinstance(v, str | int | float | bool),  # printed as text
    "int": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, str) and v.strip().lstrip("+-").isdigit())
    ),
    "bool": lambda v: isinstance(v, bool) or v in ("true", "false"),
    "strings": lambda v: (
        isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
    ),
    "any": lambda v: True,
}


@dataclass(frozen=True, slots=True)
class Spec:
    """A function: its parameters (name -> (kind, required)) and its implementation."""

    name: str
    params: dict[str, tuple[str, bool]]
    apply: Callable[[Any, dict[str, Any], Context], Any]
    per_object: bool = False  # works on each object of an array (putIfAbsent, ...)
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _int(value: Any) -> int:
    return int(str(value).strip()) if not isinstance(value, int) else value


def _text(value: Any) -> str:
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


@lru_cache(maxsize=1024)
def _param_reader(text: str) -> Reader:
    return compile_reader(text)


def _resolve_text(param: Any, context: Context) -> str:
    """A string parameter: ``${var}`` expanded; a JSONPath (``$.x``) read from the entity."""
    if isinstance(param, str):
        text = expand(param, context.env)
        if text.startswith(("$.", "$[")):
            try:
                found = _param_reader(text)(context.source, None, context.env)
            except ValueError:
                return text
            return _text(found[0] if isinstance(found, list) and found else found)
        return text
    return _text(param)


# -- strings ----------------------------------------------------------------------------------


def _concat(value: Any, p: dict[str, Any], c: Context) -> Any:
    return (
        _resolve_text(p.get("prefix", ""), c) + _text(value) + _resolve_text(p.get("suffix", ""), c)
    )


def _composite(value: Any, p: dict[str, Any], c: Context) -> Any:
    return _text(value) + _resolve_text(p["separator"], c) + _resolve_text(p["subId"], c)


def _to_string(value: Any, p: dict[str, Any], c: Context) -> Any:
    return _text(value)


def _upper(value: Any, p: dict[str, Any], c: Context) -> Any:
    return value.upper() if isinstance(value, str) else value


def _lower(value: Any, p: dict[str, Any], c: Context) -> Any:
    return value.lower() if isinstance(value, str) else value


def _substring(value: Any, p: dict[str, Any], c: Context) -> Any:
    text = _text(value)
    begin = _int(p["beginIndex"])
    end = _int(p["endIndex"]) if "endIndex" in p else len(text)
    if not 0 <= begin <= end <= len(text):
        raise FunctionError(
            f"substring({begin}, {end}) is out of range for a value of length {len(text)}"
        )
    return text[begin:end]


def _replace(value: Any, p: dict[str, Any], c: Context) -> Any:
    return _text(value).replace(_resolve_text(p["target"], c), _resolve_text(p["replacement"], c))


def _regex_replacer(
    count: int, last: bool = False
) -> Callable[[Any, dict[str, Any], Context], Any]:
    def replace(value: Any, p: dict[str, Any], c: Context) -> Any:
        text = _text(value)
        try:
            pattern = compile_java(expand(p["regex"], c.env))
            template = java_replacement(_resolve_text(p["replacement"], c))
            if last:
                matches = list(pattern.finditer(text))
                if not matches:
                    return text
                hit = matches[-1]
                return text[: hit.start()] + hit.expand(template) + text[hit.end() :]
            return pattern.sub(template, text, count=count)
        except (ValueError, IndexError, regex.error) as exc:  # bad regex or group reference
            raise FunctionError(f"cannot replace with {p['regex']!r}: {exc}") from exc

    return replace


def _split(value: Any, p: dict[str, Any], c: Context) -> Any:
    """Java String.split: the separator is a regex; trailing empty strings are dropped."""
    if not isinstance(value, str):
        return value
    try:
        parts = compile_java(p["separator"]).split(value)
    except ValueError as exc:
        raise FunctionError(str(exc)) from exc
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _matched_group(value: Any, p: dict[str, Any], c: Context) -> Any:
    if not isinstance(value, str):
        return MISSING
    try:
        pattern = compile_java(expand(p["regex"], c.env))
    except ValueError as exc:
        raise FunctionError(str(exc)) from exc
    match = pattern.fullmatch(value) or pattern.search(value)
    if match is None:
        return MISSING
    try:
        group = match.group(_int(p["groupIndex"]))
    except IndexError as exc:
        raise FunctionError(f"the regex has no group {p['groupIndex']}") from exc
    return MISSING if group is None else group


def _match_regex(value: Any, p: dict[str, Any], c: Context) -> Any:
    try:
        pattern = compile_java(expand(p["regex"], c.env))
    except ValueError as exc:
        raise FunctionError(str(exc)) from exc
    return isinstance(value, str) and pattern.fullmatch(value) is not None


# -- bytes ----------------------------------------------------------------------------------------


def _encode(value: Any, p: dict[str, Any], c: Context) -> Any:
    data = value if isinstance(value, bytes) else _text(value).encode("utf-8")
    encoded = (base64.b32encode if p["algorithm"] == "base32" else base64.b64encode)(data)
    text = encoded.decode("ascii")
    return text.rstrip("=") if _flag(p.get("skipPadding")) else text


def _decode(value: Any, p: dict[str, Any], c: Context) -> Any:
    text = _text(value).strip()
    text += "=" * (-len(text) % (8 if p["algorithm"] == "base32" else 4))
    try:
        if p["algorithm"] == "base32":
            return base64.b32decode(text.upper())
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise FunctionError(f"not valid {p['algorithm']}: {value!r}") from exc


def _flag(value: Any) -> bool:
    return value is True or value == "true"


# -- arrays and objects ------------------------------------------------------------------------


def _element_at(value: Any, p: dict[str, Any], c: Context) -> Any:
    if not isinstance(value, list):
        return value
    index = _int(p["index"])
    return value[index] if -len(value) <= index < len(value) else MISSING


def _put_if_absent(obj: Any, p: dict[str, Any], c: Context) -> Any:
    if isinstance(obj, dict) and p["key"] not in obj:
        return {**obj, p["key"]: p["defaultValue"]}
    return obj


def _put_if_present(obj: Any, p: dict[str, Any], c: Context) -> Any:
    if isinstance(obj, dict) and p["key"] in obj and obj[p["key"]] != p["defaultValue"]:
        return {**obj, p["key"]: p["defaultValue"]}
    return obj


def _copy_entry(obj: Any, p: dict[str, Any], c: Context) -> Any:
    if isinstance(obj, dict) and p["sourceKey"] in obj:
        return {**obj, p["targetKey"]: obj[p["sourceKey"]]}
    return obj


def _rename_entry(obj: Any, p: dict[str, Any], c: Context) -> Any:
    if isinstance(obj, dict) and p["sourceKey"] in obj:
        renamed = {k: v for k, v in obj.items() if k != p["sourceKey"]}
        renamed[p["targetKey"]] = obj[p["sourceKey"]]
        return renamed
    return obj


# -- codes ----------------------------------------------------------------------------------------


def _attributes(p: dict[str, Any]) -> list[str]:
    names = p["inputAttributes"]
    return [names] if isinstance(names, str) else list(names)


def _country(obj: Any, p: dict[str, Any], c: Context) -> Any:
    if not isinstance(obj, dict):
        return codes.convert_country(obj, p["outputFormat"])
    source = next((obj[a] for a in _attributes(p) if obj.get(a) not in (None, "")), None)
    if source is None:
        return obj
    return {**obj, p["outputAttribute"]: codes.convert_country(source, p["outputFormat"])}


def _region(obj: Any, p: dict[str, Any], c: Context) -> Any:
    if not isinstance(obj, dict):
        return obj
    names = _attributes(p)
    region = obj.get(names[0]) if names else None
    country = obj.get(names[1]) if len(names) > 1 else None
    if region in (None, ""):
        return obj
    return {**obj, p["outputAttribute"]: codes.convert_region(region, country, p["outputFormat"])}


def _locale(value: Any, p: dict[str, Any], c: Context) -> Any:
    return codes.convert_locale(value, p["outputFormat"])


def _timezone(value: Any, p: dict[str, Any], c: Context) -> Any:
    return codes.convert_timezone(value, p["outputFormat"])


# -- dates, passwords, ids ------------------------------------------------------------------------


def _manipulate_date(value: Any, p: dict[str, Any], c: Context) -> Any:
    source_format = p.get("sourceDateFormat")
    try:
        moment = javadate.parse_java(value, source_format)
        moved = javadate.shift(
            moment,
            **{
                unit: _int(p[unit])
                for unit in ("years", "months", "days", "hours", "minutes", "seconds")
                if unit in p
            },
        )
    except (ValueError, OverflowError) as exc:
        raise FunctionError(f"manipulateDate: {exc}") from exc
    target = p.get("targetDateFormat") or source_format
    if target is None:
        return moved.isoformat()
    return javadate.format_java(moved, target)


_LOWER, _UPPER, _DIGITS = string.ascii_lowercase, string.ascii_uppercase, string.digits
DEFAULT_SPECIAL = "~!@#$%^&*()_+"


def _random_password(value: Any, p: dict[str, Any], c: Context) -> Any:
    length = _int(p["passwordLength"])
    minimums = [
        _int(p[k])
        for k in (
            "minimumNumberOfLowercaseLetters",
            "minimumNumberOfUppercaseLetters",
            "minimumNumberOfDigits",
            "minimumNumberOfSpecialSymbols",
        )
    ]
    special = p.get("specialSymbols", DEFAULT_SPECIAL)
    if "specialSymbols" in p and minimums[3] <= 0:
        raise FunctionError("custom specialSymbols need minimumNumberOfSpecialSymbols > 0")
    if any(m < 0 for m in minimums) or sum(minimums) > length or not special:
        raise FunctionError("the minimums of randomPassword add up to more than passwordLength")
    sets = (_LOWER, _UPPER, _DIGITS, special)
    chars = [secrets.choice(s) for s, m in zip(sets, minimums, strict=True) for _ in range(m)]
    everything = "".join(sets)
    chars += [secrets.choice(everything) for _ in range(length - len(chars))]
    for i in range(len(chars) - 1, 0, -1):  # Fisher-Yates with a secure source
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def _resolve_ids(value: Any, p: dict[str, Any], c: Context) -> Any:
    if c.resolver is None:
        return value  # no operational data (a dry run): the ids stay as they are
    single = not isinstance(value, list)
    ids = [value] if single else value
    keys = [i.get("value") if isinstance(i, dict) else i for i in ids]
    wanted = [str(k) for k in keys if isinstance(k, str | int) and not isinstance(k, bool)]
    found = c.resolver.resolve(
        wanted,
        entity_type=EntityType(p.get("entityType", EntityType.USER)),
        source_system=p.get("sourceSystemName"),
        target_system=p.get("targetSystemName"),
    )
    resolved = []
    for item, key in zip(ids, keys, strict=True):
        target = found.get(str(key)) if key is not None else None
        if target is None:
            continue  # unknown in the target: left out
        resolved.append({**item, "value": target} if isinstance(item, dict) else target)
    if single:
        return resolved[0] if resolved else MISSING
    return resolved


# -- the registry -------------------------------------------------------------------------------

_REPLACE = {"regex": ("string", True), "replacement": ("text", True)}
_MAP_ENTRY = {"sourceKey": ("string", True), "targetKey": ("string", True)}
_PUT = {"key": ("string", True), "defaultValue": ("any", True)}
_DATE_UNITS = {
    u: ("int", False) for u in ("years", "months", "days", "hours", "minutes", "seconds")
}

FUNCTIONS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec("concatString", {"prefix": ("text", False), "suffix": ("text", False)}, _concat),
        Spec("compositeId", {"separator": ("string", True), "subId": ("string", True)}, _composite),
        Spec(
            "convertCountryCode",
            {
                "outputFormat": ("string", True),
                "inputAttributes": ("strings", True),
                "outputAttribute": ("string", True),
            },
            _country,
            per_object=True,
            choices={"outputFormat": codes.COUNTRY_FORMATS},
        ),
        Spec(
            "convertCountryRegion",
            {
                "outputFormat": ("string", True),
                "inputAttributes": ("strings", True),
                "outputAttribute": ("string", True),
            },
            _region,
            per_object=True,
            choices={"outputFormat": codes.REGION_FORMATS},
        ),
        Spec(
            "convertLocaleCode",
            {"outputFormat": ("string", True)},
            _locale,
            choices={"outputFormat": codes.LOCALE_FORMATS},
        ),
        Spec(
            "convertTimezoneCode",
            {"outputFormat": ("string", True)},
            _timezone,
            choices={"outputFormat": codes.TIMEZONE_FORMATS},
        ),
        Spec("copyMapEntry", _MAP_ENTRY, _copy_entry, per_object=True),
        Spec("renameMapEntry", _MAP_ENTRY, _rename_entry, per_object=True),
        Spec(
            "decode",
            {"algorithm": ("string", True), "skipPadding": ("bool", False)},
            _decode,
            choices={"algorithm": ("base32", "base64")},
        ),
        Spec(
            "encode",
            {"algorithm": ("string", True), "skipPadding": ("bool", False)},
            _encode,
            choices={"algorithm": ("base32", "base64")},
        ),
        Spec("toString", {}, _to_string),
        Spec("elementAt", {"index": ("int", True)}, _element_at),
        Spec(
            "getMatchedRegexGroup",
            {"regex": ("string", True), "groupIndex": ("int", True)},
            _matched_group,
        ),
        Spec("matchRegex", {"regex": ("string", True)}, _match_regex),
        Spec(
            "manipulateDate",
            {
                "sourceDateFormat": ("string", False),
                "targetDateFormat": ("string", False),
                **_DATE_UNITS,
            },
            _manipulate_date,
        ),
        Spec("putIfAbsent", _PUT, _put_if_absent, per_object=True),
        Spec("putIfPresent", _PUT, _put_if_present, per_object=True),
        Spec(
            "randomPassword",
            {
                "passwordLength": ("int", True),
                "minimumNumberOfLowercaseLetters": ("int", True),
                "minimumNumberOfUppercaseLetters": ("int", True),
                "minimumNumberOfDigits": ("int", True),
                "minimumNumberOfSpecialSymbols": ("int", True),
                "specialSymbols": ("string", False),
            },
            _random_password,
        ),
        Spec("replaceString", {"target": ("text", True), "replacement": ("text", True)}, _replace),
        Spec("replaceFirstString", _REPLACE, _regex_replacer(1)),
        Spec("replaceLastString", _REPLACE, _regex_replacer(1, last=True)),
        Spec("replaceAllString", _REPLACE, _regex_replacer(0)),
        Spec(
            "resolveEntityIds",
            {
                "entityType": ("string", False),
                "sourceSystemName": ("string", False),
                "targetSystemName": ("string", False),
            },
            _resolve_ids,
            choices={"entityType": tuple(EntityType)},
        ),
        Spec("splitStringToArray", {"separator": ("string", True)}, _split),
        Spec("substring", {"beginIndex": ("int", True), "endIndex": ("int", False)}, _substring),
        Spec("toUpperCaseString", {"locale": ("string", False)}, _upper),
        Spec("toLowerCaseString", {"locale": ("string", False)}, _lower),
    )
}

COMMON = {
    "function",
    "type",
    "condition",
    "applyOnElements",
    "applyOnAttribute",
    "applyOnJsonAttribute",
    "assignToAttribute",
}


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One entry of a mapping's ``functions`` array, checked and ready to run."""

    spec: Spec
    params: dict[str, Any]
    condition: Test | None = None
    condition_text: str | None = None
    on_elements: bool = False
    on_attribute: str | None = None
    assign_to: str | None = None

    def run(self, value: Any, context: Context) -> Any:
        if self.spec.per_object or self.on_elements:
            if isinstance(value, list):
                out = []
                for element in value:
                    result = self._one(element, context)
                    if result is not MISSING:
                        out.append(result)
                return out
        return self._one(value, context)

    def _one(self, value: Any, context: Context) -> Any:
        if self.condition is not None and not self.condition(context.source, value, context.env):
            return value
        argument = value
        if self.on_attribute is not None:
            if not isinstance(value, dict):
                return value
            argument = value.get(self.on_attribute, MISSING)
            if argument is MISSING:
                return value
        result = self.spec.apply(argument, self.params, context)
        target = self.assign_to or self.on_attribute
        if target is not None and isinstance(value, dict):
            if result is MISSING:
                return {k: v for k, v in value.items() if k != target}
            return {**value, target: result}
        return result


def check_call(raw: Any, where: str, problems: list[str]) -> FunctionCall | None:
    """Check one function object; report problems as '<where>: message'."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: a function is an object")
        return None
    name = raw.get("function", raw.get("type"))
    if "function" in raw and "type" in raw and raw["function"] != raw["type"]:
        problems.append(f"{where}: 'function' and 'type' name different functions")
    spec = FUNCTIONS.get(name) if isinstance(name, str) else None
    if spec is None:
        known = ", ".join(sorted(FUNCTIONS))
        problems.append(f"{where}.function: unknown function {name!r} (known: {known})")
        return None
    before = len(problems)
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in COMMON:
            continue
        if key not in spec.params:
            problems.append(f"{where}.{key}: {spec.name} has no parameter {key!r}")
            continue
        kind = spec.params[key][0]
        if not _KINDS[kind](value):
            problems.append(f"{where}.{key}: expected {kind}, got {value!r}")
            continue
        allowed = spec.choices.get(key)
        if allowed and value not in allowed:
            problems.append(f"{where}.{key}: one of {', '.join(allowed)}")
            continue
        params[key] = value
    for key, (_, required) in spec.params.items():
        if required and key not in raw:
            problems.append(f"{where}.{key}: required by {spec.name}")
    pattern = params.get("regex")
    if isinstance(pattern, str) and "${" not in pattern:  # with ${var} it is known only later
        try:
            compile_java(pattern)
        except ValueError as exc:
            problems.append(f"{where}.regex: {exc}")
    condition = None
    condition_text = raw.get("condition")
    if condition_text is not None:
        if not isinstance(condition_text, str):
            problems.append(f"{where}.condition: expected a string")
        else:
            try:
                condition = compile_condition(condition_text)
            except ValueError as exc:
                problems.append(f"{where}.condition: {exc}")
    on_elements = raw.get("applyOnElements", False)
    if not _KINDS["bool"](on_elements):
        problems.append(f"{where}.applyOnElements: expected true or false")
    attribute = raw.get("applyOnAttribute", raw.get("applyOnJsonAttribute"))
    assign = raw.get("assignToAttribute")
    for key, value in (("applyOnAttribute", attribute), ("assignToAttribute", assign)):
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}.{key}: expected a string")
    if len(problems) > before:
        return None
    return FunctionCall(
        spec=spec,
        params=params,
        condition=condition,
        condition_text=condition_text,
        on_elements=_flag(on_elements),
        on_attribute=attribute,
        assign_to=assign,
    )
