"""Where the test suite's time goes: CPU and wall time per test, module and folder.

Runs pytest on the given arguments (default: the fast subset, ``-m fast``) with a plugin that
records, for each test, the CPU time of its worker process (all its threads: the test, its
in-process servers) plus that of the subprocesses it waited for, and its wall time; and the CPU
each worker spent collecting. CPU time hardly depends on what else runs on the machine, wall
time does: compare CPU figures between runs on a loaded machine, wall figures on a quiet one.

    python benchmarks/suite.py                          # the fast subset, -n 2
    python benchmarks/suite.py -- tests/console -n 0    # any pytest arguments after --
    python benchmarks/suite.py --top 40 --json suite.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORD = "PROVISOR_SUITE_RECORD"  # the file the plugin appends its JSON lines to


# -- the plugin (loaded in each pytest worker with -p benchmarks.suite) ----------------------------


def _cpu() -> tuple[float, float]:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), children.ru_utime + children.ru_stime


def _record(row: dict[str, Any]) -> None:
    path = os.environ.get(RECORD)
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(row) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    cpu, children = _cpu()
    start = time.perf_counter()
    yield
    cpu_after, children_after = _cpu()
    _record(
        {
            "test": item.nodeid,
            "cpu": round(cpu_after - cpu + children_after - children, 4),
            "wall": round(time.perf_counter() - start, 4),
        }
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    _record({"collection_cpu": round(time.process_time(), 3), "pid": os.getpid()})


# -- the runner ------------------------------------------------------------------------------------


def summarise(rows: list[dict[str, Any]], wall: float, top: int) -> dict[str, Any]:
    tests = [row for row in rows if "test" in row]
    collections_cpu = [row["collection_cpu"] for row in rows if "collection_cpu" in row]
    by_folder: collections.Counter[str] = collections.Counter()
    by_module: collections.Counter[str] = collections.Counter()
    for row in tests:
        module = row["test"].split("::")[0]
        by_module[module] += row["cpu"]
        by_folder["/".join(module.split("/")[:2])] += row["cpu"]
    return {
        "wall_s": round(wall, 1),
        "load_average": os.getloadavg(),
        "tests": len(tests),
        "tests_cpu_s": round(sum(row["cpu"] for row in tests), 1),
        "tests_wall_sum_s": round(sum(row["wall"] for row in tests), 1),
        "collection_cpu_s_per_worker": collections_cpu,
        "cpu_by_folder_s": {k: round(v, 1) for k, v in by_folder.most_common()},
        "cpu_by_module_s": {k: round(v, 2) for k, v in by_module.most_common(top)},
        "slowest_by_cpu": sorted(tests, key=lambda row: -row["cpu"])[:top],
        "slowest_by_wall": sorted(tests, key=lambda row: -row["wall"])[:top],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--top", type=int, default=20, help="modules and tests listed")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    parser.add_argument("pytest_args", nargs="*", help="after --; default: -m fast -n 2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "record.jsonl"
        env = {**os.environ, RECORD: str(record)}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        command = [sys.executable, "-m", "pytest", "-q", "-p", "benchmarks.suite"]
        command += args.pytest_args or ["-m", "fast", "-n", "2"]
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=False)
        wall = time.perf_counter() - start
        rows = [json.loads(line) for line in record.read_text().splitlines()]
    summary = summarise(rows, wall, args.top)
    print(f"\n== test suite: {' '.join(command[3:])} ==")
    print(f"load average at the end: {summary['load_average']}")
    print(
        f"{summary['tests']} tests: wall {summary['wall_s']} s, tests' CPU "
        f"{summary['tests_cpu_s']} s (their wall times add up to {summary['tests_wall_sum_s']} s),"
        f" collection CPU per worker {summary['collection_cpu_s_per_worker']} s"
    )
    print("CPU by folder (s):", summary["cpu_by_folder_s"])
    print("CPU by module (s):")
    for module, cpu in summary["cpu_by_module_s"].items():
        print(f"  {cpu:7.2f}  {module}")
    print("slowest tests by CPU (s):")
    for row in summary["slowest_by_cpu"]:
        print(f"  {row['cpu']:7.2f}  (wall {row['wall']:.2f})  {row['test']}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
