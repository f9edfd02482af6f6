"""SCIM filter pieces (RFC 7644 §3.4.2.2): attribute paths, quoted values, conjunctions."""

from __future__ import annotations

import json
import re

_SEGMENT = re.compile(
    r"""\[\s*'(?P<single>[^']*)'\s*\]   # ['urn:...:Group'] bracket notation
      | \[\s*"(?P<double>[^"]*)"\s*\]   # ["name"]
      | \[[^\]]*\]                      # [0], [?(@.primary == true)]: no part of a SCIM path
      | (?P<name>[^.\[\]]+)             # a plain name between dots""",
    re.VERBOSE,
)
_INDEX = re.compile(r"\[[^\]]*\]")


def attribute_path(attribute: str) -> str:
    """A unique-attribute setting as a SCIM filter attribute path.

    ``emails[0].value`` → ``emails.value``; ``$.userName`` → ``userName``;
    ``['urn:sap:cloud:scim:schemas:extension:custom:2.0:Group']['name']`` →
    ``urn:sap:cloud:scim:schemas:extension:custom:2.0:Group:name``; a URN-qualified path
    stays as it is, without indexes.
    """
    text = attribute.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    if text.lower().startswith("urn:"):
        return _INDEX.sub("", text)
    path = ""
    after_urn = False
    for match in _SEGMENT.finditer(text):
        quoted = match.group("single")
        if quoted is None:
            quoted = match.group("double")
        segment = quoted if quoted is not None else match.group("name")
        if segment is None or not segment.strip():
            continue
        segment = segment.strip()
        if not path:
            path = segment
        elif after_urn:
            path = f"{path}:{segment}"
        else:
            path = f"{path}.{segment}"
        after_urn = not after_urn and segment.lower().startswith("urn:")
    return path


def quote(value: str) -> str:
    """A string as a SCIM filter comparison value: a JSON string, escapes included."""
    return json.dumps(value, ensure_ascii=False)


def equals(attribute: str, value: str) -> str:
    return f"{attribute_path(attribute)} eq {quote(value)}"


def modified_after(timestamp: str) -> str:
    return f"meta.lastModified gt {quote(timestamp)}"


def both(first: str | None, second: str | None) -> str | None:
    """Two filters joined by ``and``; a filter with ``or`` is put in parentheses."""
    parts = [f for f in (first, second) if f and f.strip()]
    if len(parts) < 2:
        return parts[0].strip() if parts else None
    return " and ".join(
        f"({p.strip()})" if re.search(r"\bor\b", p, re.IGNORECASE) else p.strip() for p in parts
    )


def split_unique(setting: str) -> tuple[str, ...]:
    """A unique-attribute setting (``userName,emails[0].value``) as its attributes: commas
    inside brackets or quotes do not separate."""
    parts: list[str] = []
    depth = 0
    quote_char = ""
    current = ""
    for char in setting:
        if quote_char:
            if char == quote_char:
                quote_char = ""
        elif char in "'\"":
            quote_char = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    parts.append(current.strip())
    return tuple(p for p in parts if p)
