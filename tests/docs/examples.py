"""The runnable examples of the Markdown documentation, and the bash script that runs them.

An example is a fenced block tagged ``sh``, ``shell``, ``bash``, ``console`` or ``http``.
What the Markdown source says about its examples, visibly to anyone who edits it:

- ``<!-- not run: REASON -->`` right before a block (blank lines between are allowed)
  excludes it; the reason is required.
- ``<!-- setup: ... -->`` runs the commands inside the comment at that point of the
  document: arrangements a reader need not see.
- a command line ending with ``# exit N`` must exit with status N (else 0).

``console`` blocks run their ``$ ``-prompted lines (and the continuation lines of those
ending with ``\\``); the other lines are output. An ``http`` block is a request line,
headers, an empty line and an optional body; it is sent with ``curl --fail``, ``$NAME``
references in its header values being those of the shell session.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = frozenset({"sh", "shell", "bash", "console", "http"})
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->$")
SETUP = re.compile(r"<!--\s*setup:(?P<script>.*?)-->", re.DOTALL)
EXPECTED_EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")
MARK = "@@example"  # the line the script prints before each example


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """One block (or setup comment) of a document: where it starts, what runs."""

    path: Path
    line: int
    language: str  # a LANGUAGES tag, or "setup"
    source: str
    excluded: str | None = None  # the reason it is not run

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def documents(root: Path) -> list[Path]:
    """README.md and every Markdown file under docs/, relative to the repository root."""
    return [Path("README.md"), *sorted(p.relative_to(root) for p in (root / "docs").rglob("*.md"))]


def examples(root: Path, path: Path) -> list[Example]:
    """The document's examples and setup comments, in document order."""
    lines = (root / path).read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    reason: str | None = None
    index = 0
    while index < len(lines):
        text = lines[index]
        opening = FENCE.match(text)
        if opening is None:
            if (marker := NOT_RUN.match(text.strip())) is not None:
                reason = marker.group("reason")
            elif text.strip():
                reason = None
            index += 1
            continue
        end = _closing(lines, index, opening.group("fence"))
        language = (opening.group("info").split() or [""])[0].lower()
        if language in LANGUAGES:
            indent = opening.group("indent")
            body = "\n".join(line.removeprefix(indent) for line in lines[index + 1 : end])
            found.append(
                Example(path=path, line=index + 1, language=language, source=body, excluded=reason)
            )
        reason = None
        index = end + 1
    found.extend(_setups(root, path))
    return sorted(found, key=lambda example: example.line)


def _closing(lines: list[str], start: int, fence: str) -> int:
    for index in range(start + 1, len(lines)):
        stripped = lines[index].strip()
        if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            return index
    return len(lines)


def _setups(root: Path, path: Path) -> Iterator[Example]:
    text = (root / path).read_text(encoding="utf-8")
    for match in SETUP.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        yield Example(path=path, line=line, language="setup", source=match.group("script"))


def commands(example: Example, address: str) -> str:
    """The bash text of an example, with the documented server address made ``address``."""
    if example.language == "http":
        text = _curl(example.source)
    elif example.language == "console":
        text = _prompted(example.source)
    else:
        text = example.source
    text = text.replace("127.0.0.1:8000", address)
    return "\n".join(_expect_exit(command) for command in _logical_lines(text))


def script(runnable: list[Example], address: str) -> str:
    """One bash script running the examples in order; each announces itself first."""
    parts = ["set -euo pipefail"]
    for number, example in enumerate(runnable):
        parts.append(f"echo '{MARK} {number}'")
        parts.append(commands(example, address))
    parts.append(f"echo '{MARK} {len(runnable)}'")
    return "\n".join(parts) + "\n"


def _prompted(source: str) -> str:
    kept: list[str] = []
    continued = False
    for line in source.splitlines():
        if continued or line.startswith("$ "):
            kept.append(line.removeprefix("$ ") if not continued else line)
            continued = line.endswith("\\")
    return "\n".join(kept)


def _logical_lines(text: str) -> Iterator[str]:
    """Lines, a line ending with a backslash joined (newline kept) with the next."""
    pending: list[str] = []
    for line in text.splitlines():
        pending.append(line)
        if not line.endswith("\\"):
            yield "\n".join(pending)
            pending = []
    if pending:
        yield "\n".join(pending)


def _expect_exit(line: str) -> str:
    """A command ending with ``# exit N`` wrapped so that it must exit with N."""
    match = EXPECTED_EXIT.search(line)
    if match is None:
        return line
    code = match.group("code")
    command = line[: match.start()].rstrip()
    return (
        f"if {command}; then status=0; else status=$?; fi; "
        f'[ "$status" -eq {code} ] || {{ echo "expected exit {code}, got $status: "'
        f"{shlex.quote(command)} >&2; exit 1; }}"
    )


def _curl(source: str) -> str:
    head, _, body = source.partition("\n\n")
    request, *headers = head.splitlines()
    method, target, *_ = request.split()
    arguments = ["curl", "-fsS", "-X", method]
    for header in headers:
        name, _, value = header.partition(":")
        if name.strip().lower() == "host":
            continue
        arguments += ["-H", f'"{name.strip()}: {_double_quoted(value.strip())}"']
    arguments.append(shlex.quote("http://127.0.0.1:8000" + target))
    if not body.strip():
        return " ".join(arguments)
    arguments += ["--data-binary", "@-"]
    return " ".join(arguments) + " <<'HTTP_BODY'\n" + body.rstrip("\n") + "\nHTTP_BODY"


def _double_quoted(value: str) -> str:
    """A header value for bash double quotes: ``$NAME`` expands, nothing else does."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
