"""Sentences a person understands from FastAPI's and pydantic's validation errors: what was
wrong, where (a body field's path, a query, path or header parameter, a line and column of
JSON), and what to send instead. ``web.errors`` answers them as 400 problem JSON or SCIM
errors; no input that could be a secret is repeated back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

# Where a parameter comes from, as FastAPI's ``loc`` names it first.
_SOURCES = {
    "query": "query parameter",
    "path": "path parameter",
    "header": "header",
    "cookie": "cookie",
}
# Hints for values that have a format, by the pydantic error types that refuse them.
_FORMATS = {
    "datetime": "a date and time such as 2026-01-31T12:00:00Z",
    "date": "a date such as 2026-01-31",
    "uuid": "a UUID such as 3f2c4b1e-8a9d-4c2e-9b1a-0d6f5e7a8c90",
}
# pydantic's words for JSON's.
_JSON_WORDS = {
    "a valid dictionary": "a JSON object",
    "a valid list": "a JSON array",
    "a valid string": "a string",
    "a valid integer": "a whole number",
    "a valid number": "a number",
    "a valid boolean": "true or false",
}
# "Input should be ...", "String should have ...": what follows "should".
_SHOULD = re.compile(r"^(?:Input|Value|String|List|Dictionary|Tuple|Set|Decimal|Data) should (.+)$")
# A pattern that lists words: (?i)^(ascending|descending)$
_WORDS = re.compile(r"(?:\(\?i\))?\^\(([\w-]+(?:\|[\w-]+)*)\)\$")
_SECRET_WORDS = ("password", "secret", "token", "key", "credential")
_MAX_SHOWN = 60


def describe(
    errors: Sequence[Mapping[str, Any]], *, body: Any = None, content_type: str = ""
) -> list[str]:
    """One sentence per error (each problem once), in the order pydantic found them.
    ``body`` is the request's text when its JSON did not parse, ``content_type`` the
    request's Content-Type."""
    sentences = [_sentence(err, body, content_type) for err in errors]
    return list(dict.fromkeys(sentences))


def known_fields(model: Any) -> list[str]:
    """The names a pydantic model takes in JSON (aliases), or none when ``model`` is not
    one."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _sentence(err: Mapping[str, Any], body: Any, content_type: str) -> str:
    kind = str(err.get("type", ""))
    loc = tuple(err.get("loc", ()))
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    if kind == "json_invalid":
        return _syntax(body, loc, str(ctx.get("error", "")))
    where = _where(loc)
    if loc in ((), ("body",)):
        return _whole_body(kind, err, content_type)
    if kind == "missing":
        return f"The {where} is missing: it is required."
    if kind == "extra_forbidden":
        return f"The {where} is not one this request takes (misspelt?)."
    if kind in ("value_error", "assertion_error"):
        reason = str(ctx.get("error", err.get("msg", "")))
        return f"The {where} is invalid: {_first_lower(reason)}."
    wanted = _wanted(kind, str(err.get("msg", "invalid")), ctx)
    said = _secret(loc) or ", not " in wanted  # "have at most 3 items, not 4"
    shown = "" if said else _shown(err.get("input"))
    return f"The {where} should {wanted}{shown}."


def _syntax(body: Any, loc: tuple[Any, ...], error: str) -> str:
    """A JSON syntax error with its line and column (``loc`` is ``("body", offset)``)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    offset = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    where = ""
    if isinstance(text, str) and offset is not None:
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        where = f" at line {line}, column {column}"
    reason = f": {_first_lower(error)}" if error else ""
    return f"The request body is not valid JSON{reason}{where}. Send a well-formed JSON document."


def _whole_body(kind: str, err: Mapping[str, Any], content_type: str) -> str:
    media = content_type.split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        return (
            f"The request body is {media}, which this operation does not read: send JSON "
            "with the header Content-Type: application/json."
        )
    if kind == "missing":
        return "The request has no body: send a JSON object (Content-Type: application/json)."
    got = _json_kind(err.get("input"))
    return f"The request body should be a JSON object, not {got}."


def _wanted(kind: str, msg: str, ctx: Mapping[str, Any]) -> str:
    """What the value should do ("be a string", "have at least 1 character"), from
    pydantic's "Input should be ...", "String should have ..." messages."""
    if kind in ("enum", "literal_error") and "expected" in ctx:
        return f"be one of {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        return _pattern(str(ctx.get("pattern", "")))
    for prefix, hint in _FORMATS.items():
        if kind.startswith(prefix):
            return f"be {hint}"
    found = _SHOULD.match(msg)
    if found is None:
        return f"be valid ({_first_lower(msg)})"
    wanted = found.group(1).replace(" after validation", "")
    if kind.endswith("_parsing"):  # "be a valid integer, unable to parse string as an integer"
        wanted = wanted.split(", ")[0]
    if wanted.startswith("be "):
        wanted = "be " + _JSON_WORDS.get(wanted[3:], wanted[3:])
    return wanted


def _pattern(pattern: str) -> str:
    """``be one of json or csv`` for a pattern that lists words, else the pattern itself."""
    words = _WORDS.fullmatch(pattern)
    if words is None:
        return f"match the pattern {pattern}"
    *first, last = words.group(1).split("|")
    return f"be one of {', '.join(first)} or {last}" if first else f"be {last}"


def _where(loc: Iterable[Any]) -> str:
    parts = list(loc)
    source = str(parts.pop(0)) if parts and parts[0] in (*_SOURCES, "body") else "body"
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if source == "body":
        return f"field {path}" if path else "request body"
    return f"{_SOURCES[source]} {path}"


def _secret(loc: Iterable[Any]) -> bool:
    return any(word in str(part).lower() for part in loc for word in _SECRET_WORDS)


def _shown(value: Any) -> str:
    """``, not <value>`` for a value a person can recognise, short enough to read."""
    if isinstance(value, dict | list) or value is None:
        return f", not {_json_kind(value)}"
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return f", not {text}"


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str | bytes):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _first_lower(text: str) -> str:
    text = text.removeprefix("Value error, ").removeprefix("Assertion failed, ").rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
