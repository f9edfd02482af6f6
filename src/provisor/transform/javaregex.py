"""Java regular expressions, as SAP's transformations write them, run with the ``regex`` module.

``regex`` already speaks most of Java's dialect (possessive quantifiers, atomic groups,
``(?<name>...)``, ``\\p{L}``). What differs is translated: the POSIX classes (``\\p{Punct}``
is ASCII punctuation in Java, not Unicode's), ``\\Q...\\E`` quoting, and the ``$1`` /
``${name}`` references of replacement strings.
"""

from __future__ import annotations

import re as _re
from functools import lru_cache

import regex

_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0B\\f\\r",
}


def translate(pattern: str) -> str:
    """A Java pattern in the syntax of the ``regex`` module."""
    out: list[str] = []
    i, depth = 0, 0  # depth: inside a character class
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(regex.escape(literal))
                i = len(pattern) if end < 0 else end + 2
                continue
            if nxt in "pP" and i + 2 < len(pattern) and pattern[i + 2] == "{":
                close = pattern.find("}", i + 3)
                name = pattern[i + 3 : close] if close > 0 else ""
                posix = _POSIX.get(name.removeprefix("Is"))
                if posix is not None:
                    negated = nxt == "P"
                    if depth:
                        if negated:  # [^...] cannot nest: fall back to a Unicode property
                            out.append(pattern[i : close + 1])
                        else:
                            out.append(posix)
                    else:
                        out.append(f"[{'^' if negated else ''}{posix}]")
                    i = close + 1
                    continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        out.append(char)
        i += 1
    return "".join(out)


_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL, "x": regex.VERBOSE}


@lru_cache(maxsize=2048)
def compile_java(pattern: str, flags: str = "") -> regex.Pattern[str]:
    """Compile a Java regex; ValueError with the reason if it is invalid."""
    mode = regex.VERSION0
    for flag in flags:
        mode |= _FLAGS.get(flag, 0)
    try:
        return regex.compile(translate(pattern), mode)
    except regex.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc


_JAVA_REFERENCE = _re.compile(r"\\(.)|\$(\d+)|\$\{([A-Za-z][A-Za-z0-9]*)\}")


@lru_cache(maxsize=2048)
def java_replacement(replacement: str) -> str:
    """A Java replacement string (``$1``, ``${name}``, ``\\$``) as a ``regex`` template."""

    def convert(match: _re.Match[str]) -> str:
        escaped, number, name = match.groups()
        if escaped is not None:
            return "\\\\" if escaped == "\\" else escaped
        if number is not None:
            return f"\\g<{number}>"
        return f"\\g<{name}>"

    return _JAVA_REFERENCE.sub(convert, replacement)
