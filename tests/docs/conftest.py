"""The documentation's example counts in the terminal summary, for the release notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import documents, examples

ROOT = Path(__file__).resolve().parents[2]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = [example for path in documents(ROOT) for example in examples(ROOT, path)]
    excluded = sum(example.excluded is not None for example in found)
    terminalreporter.write_line(
        f"documentation examples: {len(found) - excluded} executed, {excluded} excluded"
    )
