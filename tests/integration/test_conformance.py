"""Independent SCIM conformance testers against the real server: zero failures allowed,
but for the one scim-sanity probe that expects dangling members to be stored."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.conftest import LiveServer


def test_scim2_tester_reports_no_failure(server: LiveServer) -> None:
    with Client(base_url=server.url + "/scim", auth=server.admin, timeout=60) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client, raise_exceptions=False)
    failures = [
        f"{r.title} [{r.resource_type}]: {r.reason}"
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED)
    ]
    assert len(results) > 100
    assert failures == []


# The one probe that fails by design: it adds the member "fake-member-id" and expects 200;
# the directory refuses members that do not exist with 404, as SAP's compliance tests want
# (docs/decisions/0022-group-members-exist-and-keep-their-display.md).
REFERENTIAL_INTEGRITY = "PATCH /Groups/{id} add member"


def _scim_sanity() -> list[str]:
    installed = shutil.which("scim-sanity", path=str(Path(sys.executable).parent))
    return [installed] if installed else [sys.executable, "-m", "scim_sanity"]


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_scim_sanity_reports_no_failure(server: LiveServer, auth: str) -> None:
    if auth == "basic":
        credentials = ["--username", server.admin[0], "--password", server.admin[1]]
    else:
        with server.client() as client:
            response = client.post("/oauth2/token", data={"grant_type": "client_credentials"})
        credentials = ["--token", response.json()["access_token"]]
    completed = subprocess.run(
        [
            *_scim_sanity(),
            "probe",
            f"{server.url}/scim",
            *credentials,
            "--i-accept-side-effects",
            "--json-output",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(completed.stdout)
    failed = [r["name"] for r in report["results"] if r["status"] == "fail"]
    assert failed == [REFERENTIAL_INTEGRITY], completed.stdout
    assert report["summary"]["failed"] == len(failed), completed.stdout
    assert report["summary"].get("errors", 0) == 0, completed.stdout
    assert report["summary"]["passed"] >= 25
