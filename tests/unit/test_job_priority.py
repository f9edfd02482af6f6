"""Job runner processes yield the CPU to the API: ``PROVISOR_JOB_NICE`` lowers their
priority (checked in a child process: nice cannot be raised again)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = (
    "import os; from provisor.runtime import yield_to_requests; "
    "from provisor.settings import Settings; "
    "yield_to_requests(Settings(job_nice={nice})); print(os.nice(0))"
)


@pytest.mark.parametrize("nice", [10, 0])
def test_a_job_runner_lowers_its_priority_by_job_nice(nice: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    found = subprocess.run(
        [sys.executable, "-c", CHILD.format(nice=nice)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert int(found.stdout.strip()) == min(os.nice(0) + nice, 19)
