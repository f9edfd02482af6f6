"""Fuzz the whole HTTP API with schemathesis, once per technical-user permission set.

Starts a real ``provisor serve`` (SQLite in a temporary data folder, or ``--database-url``),
creates a technical user for every permission set and a few entities to aim at, then runs
``schemathesis run`` over /openapi.json as each user with the checks of scripts/fuzz_hooks.py:
no 5xx, and no 2xx for a caller without the route's permission. Exit status 0 when no run
found anything. See docs/security-testing.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from provisor.auth.clients import INITIAL_ADMIN_FILE

HERE = Path(__file__).resolve().parent
# "none" calls without credentials: provisor refuses to create a user without a permission.
PERMISSION_SETS: dict[str, list[str]] = {
    "none": [],
    "manage_users": ["manage_users"],
    "manage_groups": ["manage_groups"],
    "proxy_api": ["proxy_api"],
    "realtime_api": ["realtime_api"],
    "tenant_admin_api": ["tenant_admin_api"],
    "view": ["view"],
    "admin": ["admin"],  # last: its run may delete or reset what the others aim at
}
# provisor's two (scripts/fuzz_hooks.py), then schemathesis's: every answer is what the
# OpenAPI document declares for it (status, media type and body).
CHECKS = (
    "no_server_error",
    "permission_enforced",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/fuzz-api", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL of a throwaway database")
    parser.add_argument(
        "--max-examples",
        type=int,
        default=Options.max_examples,
        help=f"per operation and phase ({Options.max_examples})",
    )
    parser.add_argument("--phases", default=Options.phases, help="schemathesis phases to run")
    parser.add_argument(
        "--permission",
        action="append",
        choices=sorted(PERMISSION_SETS),
        help="fuzz only as these permission sets (repeatable; default: all)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="'METHOD /path'",
        help="leave out one operation, e.g. 'GET /scim/Schemas' (repeatable)",
    )
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="one schemathesis run, each test case as a drawn permission set (the coverage "
        "phase, whose cases the hooks do not see, is left out)",
    )
    parser.add_argument("--seed", type=int, help="schemathesis random seed")
    parser.add_argument("--workers", default=Options.workers, help="schemathesis workers (1)")
    parser.add_argument("--report-dir", type=Path, help="keep schemathesis output here")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    data_dir: Path, database_url: str | None, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``provisor serve`` in its own process group; (process, base URL)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    # The tenant's inbound budget (spec §3.13) and the budget of failed authentications per
    # address would answer most fuzz requests 429 (and so test nothing behind them).
    env |= {
        "PROVISOR_INBOUND_THROTTLE_PER_MINUTE": "0",
        "PROVISOR_INBOUND_MAX_PER_MINUTE": "0",
        "PROVISOR_AUTH_FAILURES_PER_MINUTE": "0",
    }
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port), "--workers", "1"]
    command += ["--data-dir", str(data_dir)]
    if database_url:
        command += ["--database-url", database_url]
    process = subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"provisor serve exited with {process.returncode}; see {log}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"provisor serve did not answer /health within 60 s; see {log}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def create_users(data_dir: Path, database_url: str | None) -> dict[str, tuple[str, str] | None]:
    """A technical user for every permission set: name -> (client id, secret), None for none."""
    from provisor.runtime import Services
    from provisor.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url)
    services = Services.open(settings)
    try:
        users: dict[str, tuple[str, str] | None] = {"none": None}
        for name, permissions in PERMISSION_SETS.items():
            if not permissions:
                continue
            _, creds = services.clients.create(f"fuzz-{name}-{uuid.uuid4().hex[:6]}", permissions)
            users[name] = (creds.client_id, creds.client_secret)
        return users
    finally:
        services.close()


def seed(url: str, admin: tuple[str, str], clients: list[str]) -> dict[str, list[str]]:
    """Entities for the fuzzer to aim at; their ids by kind."""
    with httpx.Client(base_url=url, auth=admin, timeout=30) as api:

        def created(path: str, body: dict[str, Any]) -> str:
            response = api.post(path, json=body)
            if response.status_code != 201:
                raise SystemExit(f"seeding: POST {path} answered {response.status_code}")
            return str(response.json()["id"])

        user = created("/scim/Users", {"schemas": [USER], "userName": "fuzz.seed"})
        group = created(
            "/scim/Groups",
            {"schemas": [GROUP], "displayName": "fuzz seed", "members": [{"value": user}]},
        )
        lid = "local-identity-directory"
        proxy = created("/api/v1/systems", {"name": "fuzz proxy", "type": lid, "role": "proxy"})
        source = created("/api/v1/systems", {"name": "fuzz source", "type": lid, "role": "source"})
        target = created("/api/v1/systems", {"name": "fuzz target", "type": lid, "role": "target"})
        types = [t["id"] for t in api.get("/api/v1/connector-types").json()["items"]]
    return {
        "users": [user],
        "groups": [group],
        "proxies": [proxy],
        "sources": [source],
        "systems": [source, target, proxy],
        "connector_types": types,
        "clients": clients,
    }


@dataclass(frozen=True)
class Options:
    """How hard schemathesis tries."""

    max_examples: int = 15
    phases: str = "examples,coverage,fuzzing"
    exclude: tuple[str, ...] = ()  # operations left out, as "METHOD /path"
    seed: int | None = None
    workers: str = "1"


@dataclass(frozen=True)
class Run:
    """What one schemathesis run found."""

    status: int
    seconds: float
    output: str

    @property
    def cases(self) -> str:
        """schemathesis's count of test cases, e.g. "432 generated, 432 passed"."""
        lines = self.output.splitlines()
        return next((n.strip() for p, n in itertools.pairwise(lines) if p == "Test cases:"), "")


def fuzz(
    url: str,
    callers: list[str],
    users: dict[str, tuple[str, str] | None],
    seeds: dict[str, Any],
    options: Options,
) -> Run:
    """One schemathesis run over the whole API; each test case calls as one of ``callers``
    (drawn by the hooks; with one caller, its credentials go with every phase's requests)."""
    command = [sys.executable, "-m", "schemathesis.cli", "run", url + "/openapi.json"]
    only = users[callers[0]] if len(callers) == 1 else None
    if only is not None:
        command += ["--auth", ":".join(only)]
    command += ["--checks", ",".join(CHECKS), "--phases", options.phases]
    command += ["--max-examples", str(options.max_examples), "--workers", options.workers]
    command += ["--suppress-health-check", "all", "--no-shrink", "--warnings", "off"]
    command += ["--request-timeout", "30", "--continue-on-failure"]
    if options.seed is not None:
        command += ["--seed", str(options.seed)]
    for operation in options.exclude:
        command += ["--exclude-name", operation]
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "FUZZ_USERS": json.dumps(users),
        "FUZZ_AS": ",".join(callers),
        "FUZZ_SEEDS": json.dumps(seeds),
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="schemathesis-") as scratch:  # its .schemathesis cache
        done = subprocess.run(
            command, env=env, cwd=scratch, capture_output=True, text=True, check=False
        )
    return Run(done.returncode, time.monotonic() - started, done.stdout + done.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    names = [n for n in PERMISSION_SETS if not args.permission or n in args.permission]
    with tempfile.TemporaryDirectory(prefix="provisor-fuzz-") as temp:
        data_dir = Path(temp) / "data"
        data_dir.mkdir()
        reports = args.report_dir or Path(temp)
        reports.mkdir(parents=True, exist_ok=True)
        server_log = reports / "server.log"
        started = time.monotonic()
        process, url = start_server(data_dir, args.database_url, server_log)
        print(f"server up in {time.monotonic() - started:.1f} s at {url}", flush=True)
        try:
            admin_doc = json.loads((data_dir / INITIAL_ADMIN_FILE).read_text())
            admin = (admin_doc["client_id"], admin_doc["client_secret"])
            users = create_users(data_dir, args.database_url)
            seeds = seed(url, admin, [u[0] for u in users.values() if u])
            print(f"users and seed data after {time.monotonic() - started:.1f} s", flush=True)
            failed = []
            phases = args.phases
            if args.mixed:
                phases = ",".join(p for p in phases.split(",") if p != "coverage")
            exclude = tuple(args.exclude)
            options = Options(args.max_examples, phases, exclude, args.seed, args.workers)
            runs = [names] if args.mixed else [[name] for name in names]
            for callers in runs:
                name = "mixed" if args.mixed else callers[0]
                run = fuzz(url, callers, users, seeds, options)
                (reports / f"schemathesis-{name}.txt").write_text(run.output)
                print(f"{name:17} exit {run.status}  {run.seconds:6.1f} s  {run.cases}", flush=True)
                if run.status != 0:
                    failed.append(name)
                    print(run.output[-6000:])
        finally:
            stop_server(process)
        if failed:
            print(f"findings as: {', '.join(failed)}; server log: {server_log}")
            if args.report_dir is None:
                print(server_log.read_text()[-8000:])
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
