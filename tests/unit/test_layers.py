"""The dependency rule: layers, pure cores, no import cycle.

The contracts are in pyproject.toml ([tool.importlinter]); ``lint-imports`` checks them, and so
does this test. Imports under TYPE_CHECKING count everywhere: a cycle of annotations is still
a cycle (and one step away from a real one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import grimp
import pytest

import provisor

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(provisor.__file__).resolve().parents[1]  # the src directory tested


def _contract(contract_id: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == contract_id)


def _ignored(contract_id: str) -> set[tuple[str, str]]:
    """The (importer, imported) pairs a contract ignores (exact module names only)."""
    pairs = set()
    for line in _contract(contract_id).get("ignore_imports", []):
        importer, _, imported = (part.strip() for part in line.partition("->"))
        assert "*" not in importer + imported, f"{line}: name modules exactly here"
        pairs.add((importer, imported))
    return pairs


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        "provisor",
        include_external_packages=False,
        exclude_type_checking_imports=False,  # they count
        cache_dir=None,
    )


def test_import_contracts_are_kept() -> None:
    """lint-imports: the layers, the pure cores and no cycle between a package's modules."""
    code = (
        "import sys; from importlinter.cli import lint_imports;"
        " sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(SOURCE), "COLUMNS": "200"},
        check=False,
    )
    report = result.stdout[result.stdout.find("Contracts") :] + result.stderr
    if result.returncode != 0:
        pytest.fail("lint-imports reports broken contracts:\n" + report, pytrace=False)


@pytest.mark.parametrize(
    "modules",
    [
        "provisor.scim.patch, provisor.scim.values, provisor.scim.projection,"
        " provisor.scim.custom_schemas, provisor.scim.members",
        "provisor.transform, provisor.transform.defaults",
    ],
)
def test_cores_import_neither_fastapi_nor_sqlalchemy(modules: str) -> None:
    """What the pure-cores contract says, at run time (an import by name included)."""
    code = (
        f"import sys; import {modules};"
        " print(sorted(m for m in ('fastapi', 'starlette', 'sqlalchemy', 'httpx')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_cli_loads_no_server_stack_before_a_command_needs_it() -> None:
    """A remote command (``provisor clients list`` on a laptop) starts in a fraction of a
    second: building the ``provisor`` command loads no web framework, database toolkit,
    settings, transformation engine or connector; the commands that use them import them."""
    heavy = (
        "fastapi",
        "starlette",
        "sqlalchemy",
        "lark",
        "provisor.settings",
        "provisor.transform.engine",
        "provisor.connectors.outbound",
        "provisor.runtime",
    )
    code = f"import sys, provisor.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def _edges(graph: grimp.ImportGraph, ignored: set[tuple[str, str]]) -> dict[str, set[str]]:
    return {
        module: {
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if (module, imported) not in ignored
        }
        for module in graph.modules
    }


def _cycles(edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        yield sorted(component)


def _loop(edges: dict[str, set[str]], component: Iterable[str]) -> list[str]:
    """One cycle through the component's first node: a → b → ... → a (breadth first)."""
    members = set(component)
    first = min(members)
    paths = {first: [first]}
    queue = [first]
    while queue:
        node = queue.pop(0)
        for successor in sorted(edges[node] & members):
            if successor == first:
                return [*paths[node], first]
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                queue.append(successor)
    raise AssertionError(f"no cycle through {first}")  # pragma: no cover


def _report(edges: dict[str, set[str]], cycles: list[list[str]]) -> str:
    return "\n".join(
        f"- {' -> '.join(_loop(edges, component))}"
        + (f"\n  (the whole cycle: {', '.join(component)})" if len(component) > 2 else "")
        for component in cycles
    )


def test_no_module_imports_itself_through_others(graph: grimp.ImportGraph) -> None:
    """No import cycle between modules, a package's __init__ and its modules included."""
    edges = _edges(graph, _ignored("acyclic"))
    cycles = list(_cycles(edges))
    assert not cycles, (
        "import cycles (move the shared type or function down into its own module):\n"
        + _report(edges, cycles)
    )


def test_no_cycle_between_top_level_packages(graph: grimp.ImportGraph) -> None:
    ignored = _ignored("layers") | _ignored("acyclic")
    edges: dict[str, set[str]] = {}
    for module, imported in _edges(graph, ignored).items():
        package = ".".join(module.split(".")[:2])
        edges.setdefault(package, set()).update(".".join(name.split(".")[:2]) for name in imported)
    for package, imported in edges.items():
        imported.discard(package)
        imported.discard("provisor")  # the root package's __init__ (its version) only
    cycles = list(_cycles(edges))
    assert not cycles, "cycles between packages:\n" + _report(edges, cycles)


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert list(_cycles(edges)) == [["a", "b", "c"]]
    assert _loop(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]
