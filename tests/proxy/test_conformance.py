"""scim2-tester and scim-sanity against proxies over the Local Identity Directory, a SCIM
back-end (scim2-server) and LDAP (slapd): no failure but those ``KNOWN`` names."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from provisor.systems.model import System
from tests.conftest import LiveServer
from tests.connectors.ldap_server import LDAPServer, running_slapd
from tests.connectors.scim_peers import scim2_server
from tests.integration.test_conformance import REFERENTIAL_INTEGRITY, _scim_sanity
from tests.proxy.conftest import PROXY_PATH, proxy_system

pytestmark = pytest.mark.slow

trees = itertools.count()


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LDAPServer]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as running:
        yield running


def _ou(dn: str) -> tuple[str, dict[str, Any]]:
    return dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]}


@pytest.fixture(params=["lid", "scim", "ldap"])
def proxy(request: pytest.FixtureRequest, server: LiveServer) -> Iterator[System]:
    """A proxy system over each kind of back-end."""
    if request.param == "lid":
        yield proxy_system(server)
    elif request.param == "scim":
        with scim2_server() as peer:
            properties = {"URL": peer.url, "Authentication": "NoAuthentication"}
            yield proxy_system(server, type="SCIM System", properties=properties)
    else:
        slapd: LDAPServer = request.getfixturevalue("slapd")
        base = f"ou=c{next(trees)},{slapd.suffix}"
        people, groups = f"ou=people,{base}", f"ou=groups,{base}"
        slapd.add([_ou(base), _ou(people), _ou(groups)])
        properties = {
            "ldap.url": slapd.url,
            "ldap.user": slapd.bind_dn,
            "ldap.password": slapd.password,
            "ldap.user.path": people,
            "ldap.group.path": groups,
        }
        yield proxy_system(server, type="ldap", properties=properties)


# The one scim-sanity check no LDAP proxy can pass: it PATCHes `active` to false and reads
# it back, but inetOrgPerson (and the standard OpenLDAP schemas) has no account-status
# attribute to keep it in, so the default LDAP transformations map no `active` and the
# served schema does not list it (docs/proxy.md, "Conformance").
# Over the Local Identity Directory, as on /scim, the probe that adds a member that does
# not exist fails by design (decision 0022).
KNOWN = {
    "ldap": {"GET /Users/{id} after PATCH"},
    "local-identity-directory": {REFERENTIAL_INTEGRITY},
}


def test_scim2_tester(server: LiveServer, proxy: System) -> None:
    url = f"{server.url}{PROXY_PATH}/{proxy.id}"
    with Client(base_url=url, auth=server.new_client("proxy_api"), timeout=60) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client, raise_exceptions=False)
    failures = [
        f"{r.title} [{r.resource_type}]: {r.reason}"
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED)
    ]
    assert len(results) > 40
    # PATCH, sorting and ETags are advertised: their checks run (only the multi-type
    # POST /.search is skipped)
    skipped = [r.title for r in results if r.status is Status.SKIPPED]
    assert set(skipped) <= {"search_with_attributes"}, skipped
    assert failures == [], "\n".join(failures)


def test_scim_sanity(server: LiveServer, proxy: System) -> None:
    user, password = server.new_client("proxy_api")
    completed = subprocess.run(
        [
            *_scim_sanity(),
            "probe",
            f"{server.url}{PROXY_PATH}/{proxy.id}",
            "--username",
            user,
            "--password",
            password,
            "--i-accept-side-effects",
            "--json-output",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(completed.stdout)
    assert report["summary"].get("errors", 0) == 0, completed.stdout
    failures = [r["name"] for r in report["results"] if r["status"] == "fail"]
    assert [f for f in failures if f not in KNOWN.get(proxy.type.id, set())] == [], completed.stdout
    assert report["summary"]["passed"] >= 12
