"""``benchmarks/scim_directory.py --compare``: the comparison's arithmetic, and the whole run on a
few users (provisor and scim2-server always; django-scim2 when its environment exists)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import scim_directory
from benchmarks.peers import djangoscim
from benchmarks.scim_directory import ServerRun, WrkResult, compare_rows

NO_WRK = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
NO_DJANGO = pytest.mark.skipif(
    not djangoscim.environment_ready(),
    reason=f"no django-scim2 environment in {djangoscim.default_venv()} with the pinned "
    "versions; the tests never install it (that needs the package registry): "
    "`python benchmarks/scim_directory.py --compare` creates it",
)
# A second of warm-up takes the first, slow requests of a fresh server out of the measured
# seconds (on a loaded machine, one second without it once completed no request at all).
TINY = ["--duration", "2", "--warmup", "1", "--settle", "0", "--connections", "2"]


def server_run(name: str, rates: dict[str, float], load_rate: float, failed: str = "") -> ServerRun:
    run = ServerRun(name, 100, users_loaded=100, load_rate=load_rate)
    for operation, rate in rates.items():
        run.measurements[operation] = WrkResult(
            operation, rps=rate, p99_ms=5.0, non_2xx=3 if operation == failed else 0
        )
    return run


def test_ratios_are_marked_against_the_goals_of_each_peer() -> None:
    provisor = server_run(
        "provisor/sqlite", {"get": 900, "filter": 900, "post": 300, "patch": 300}, 3000
    )
    reference = server_run(
        "scim2-server", {"get": 300, "filter": 301, "post": 150, "patch": 100}, 500
    )
    django = server_run(
        "django-scim2", {"get": 100, "filter": 100, "post": 200, "patch": 100}, 400, "patch"
    )

    rows = {row["operation"]: row for row in compare_rows(provisor, [reference, django])}

    assert rows["get"]["peers"]["scim2-server"] == {
        "rate": 300,
        "p99_ms": 5.0,
        "non_2xx": 0,
        "ratio": 3.0,
        "round_ratios": [3.0],
        "goal": 3.0,
        "met": True,
    }
    assert rows["filter"]["peers"]["scim2-server"]["met"] is False  # x2.99 < 3
    assert rows["post"]["peers"]["scim2-server"]["met"] is True  # x2 >= 2
    assert rows["post"]["peers"]["django-scim2"]["ratio"] == 1.5
    assert rows["post"]["peers"]["django-scim2"]["met"] is True  # x1.5 >= 1.5
    # a peer's failed answers make no ratio: it would compare errors with work
    assert rows["patch"]["peers"]["django-scim2"]["ratio"] is None
    assert rows["patch"]["peers"]["django-scim2"]["met"] is None
    load = rows["load"]
    assert load["provisor"]["met"] is True  # 3,000 users/s is the goal
    assert load["peers"]["scim2-server"]["ratio"] == 6.0
    assert load["peers"]["django-scim2"]["goal"] is None


@NO_WRK
@pytest.mark.slow
def test_compare_runs_provisor_and_scim2_server_on_the_same_users(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    # one round: test_with_rounds_the_ratio_is_the_median_of_the_rounds_ratios does the median
    argv = ["--compare", "--skip-django", "--users", "40", "--ref-users", "40", "--rounds", "1"]

    tiny = ["--duration", "1", *TINY[2:]]  # one measured second per operation
    status = scim_directory.main([*argv, *tiny, "--json", str(out)])

    report = json.loads(out.read_text())
    runs = {run["name"]: run for run in report["runs"]}
    assert {name: run["problems"] for name, run in runs.items()} == {name: [] for name in runs}
    assert status == 0
    assert set(runs) == {"provisor/sqlite", "scim2-server"}
    for run in runs.values():
        assert run["users_loaded"] == 40
        assert set(run["measurements"]) == {"get", "filter", "post", "patch"}
        assert all(m["requests"] > 0 and m["non_2xx"] == 0 for m in run["measurements"].values())
        assert run["full_reads"] == []  # not part of the comparison
        assert set(run["load_average"]) == {"start", "loaded", "measured"}
        assert all(len(rates) == 1 for rates in run["round_rates"].values())
    assert report["arguments"]["patch_path"] == "name.familyName"
    rows = {row["operation"]: row for row in report["comparison"]}
    assert list(rows) == ["get", "filter", "post", "patch", "load"]
    for operation, goals in scim_directory.COMPARE_GOALS.items():
        peer = rows[operation]["peers"]["scim2-server"]
        assert peer["goal"] == goals["scim2-server"]
        assert peer["ratio"] > 0
        assert len(peer["round_ratios"]) == 1
        assert peer["met"] == (peer["ratio"] >= peer["goal"])
    assert rows["load"]["provisor"]["goal"] == scim_directory.BULK_LOAD_GOAL


@NO_WRK
@NO_DJANGO
@pytest.mark.slow
def test_django_scim2_peer_serves_every_measured_operation(tmp_path: Path) -> None:
    args = scim_directory.parse_args(["--compare", "--django-users", "40", *TINY])

    run = scim_directory.run_django(args, scim_directory.ensure_wrk())

    assert run.users_loaded == 40
    assert run.problems == []
    assert run.settings["journal_mode"] == "wal"
    assert run.settings["synchronous"] == "FULL"
    assert set(run.measurements) == {"get", "filter", "post", "patch"}
    assert all(m.requests > 0 and m.non_2xx == 0 for m in run.measurements.values())


def test_with_rounds_the_ratio_is_the_median_of_the_rounds_ratios() -> None:
    provisor = server_run("provisor/sqlite", {"post": 300}, 3000)
    peer = server_run("scim2-server", {"post": 100}, 500)
    provisor.round_rates["post"] = [300, 150, 400]
    peer.round_rates["post"] = [100, 100, 100]  # a burst of load halved provisor's 2nd round

    row = compare_rows(provisor, [peer])[2]["peers"]["scim2-server"]

    assert row["round_ratios"] == [3.0, 1.5, 4.0]
    assert row["ratio"] == 3.0
    assert row["met"] is True
    peer.round_failures["post"] = 1  # a failed answer in any round: no ratio
    assert compare_rows(provisor, [peer])[2]["peers"]["scim2-server"]["ratio"] is None
