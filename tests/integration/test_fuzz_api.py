"""A quick schemathesis run over the whole API as every permission set (scripts/fuzz-api).

The full run, with many more examples and on PostgreSQL too, is in docs/security-testing.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from provisor.settings import Settings
from tests.conftest import LiveServer

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_api", SCRIPTS / "fuzz_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_api", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sqlite_settings(sqlite_settings: Settings) -> Settings:
    """Without the tenant's inbound rate limit (spec §3.13) and the budget of failed
    authentications: the fuzzer sends hundreds of calls, many of them anonymous."""
    return sqlite_settings.model_copy(
        update={
            "inbound_throttle_per_minute": 0,
            "inbound_max_per_minute": 0,
            "auth_failures_per_minute": 0,
        }
    )


@pytest.mark.integration
@pytest.mark.slow
def test_no_server_error_and_no_success_without_permission(sqlite_server: LiveServer) -> None:
    harness = load_harness()
    users: dict[str, tuple[str, str] | None] = {
        name: sqlite_server.new_client(*permissions) if permissions else None
        for name, permissions in harness.PERMISSION_SETS.items()
    }
    clients = [user[0] for user in users.values() if user]
    seeds = harness.seed(sqlite_server.url, sqlite_server.admin, clients)
    options = harness.Options(max_examples=12, phases="examples,fuzzing", seed=1)
    run = harness.fuzz(sqlite_server.url, list(users), users, seeds, options)
    assert run.status == 0, run.output[-12000:]
    assert "generated" in run.cases, run.output[-3000:]
