"""The documentation's example counts in the terminal summary, for the release notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import documents, examples

ROOT = Path(__file__).resolve().parents[2]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Per document with examples, and in all: how many run, how many are excluded."""
    total = [0, 0]
    for path in documents(ROOT):
        found = examples(ROOT, path)
        excluded = sum(example.excluded is not None for example in found)
        if found:
            terminalreporter.write_line(
                f"{path}: {len(found) - excluded} examples executed, {excluded} excluded"
            )
        total[0] += len(found) - excluded
        total[1] += excluded
    terminalreporter.write_line(f"documentation examples: {total[0]} executed, {total[1]} excluded")
