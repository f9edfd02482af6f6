"""CPU time of an access line (provisor serve --access-log) and of a span when tracing is off.

CPU time (``time.process_time``), not wall time: on a shared machine the wall clock measures
the neighbours. Run: ``PYTHONPATH=src python3 benchmarks/log_costs.py``.
"""

from __future__ import annotations

import os
import sys
import time
import timeit

import structlog

from provisor import logs, tracing


def main() -> None:
    report = sys.stdout
    sys.stderr = open(os.devnull, "w")  # the lines go nowhere
    logs.configure("info")
    structlog.contextvars.bind_contextvars(request_id="68f097ab5b531c2a2157902dc55f8e50")
    log = structlog.get_logger("provisor.access")

    def line() -> None:
        log.info(
            "request",
            method="GET",
            path="/scim/Users",
            status=200,
            duration_ms=4.1,
            bytes=130,
            client="10.0.3.7",
            tenant="default",
            actor="hr-sync",
            actor_type="client",
            client_id="6ababc6c-e9d0-4e2b-b1d3-0bee92aa770f",
            auth="basic",
        )

    def span() -> None:
        with tracing.span("target write", target="CSV", entity_type="user", items=1):
            pass

    for name, run, n in (("access line", line, 20_000), ("span, tracing off", span, 200_000)):
        best = min(timeit.repeat(run, number=n, repeat=5, timer=time.process_time)) / n
        print(f"{name}: {best * 1e6:.2f} µs CPU", file=report)


if __name__ == "__main__":
    main()
