"""Ids cannot climb a back-end's paths (issue 13, item 10): a proxy id is one path segment,
never ``.``/``..``/empty/control characters; LDAP DN ids stay below the system's base."""

from __future__ import annotations

import base64
import http.client
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from provisor.connectors.base import BackendError, ConnectorConfig, InvalidId, Role, path_segment
from provisor.connectors.ldap.directory import within
from provisor.connectors.scim.connector import SCIMConnector
from provisor.context import Context
from provisor.jobs.model import JobStatus, JobType
from provisor.runtime import Services
from tests.conftest import LiveServer
from tests.connectors.test_ldap import Tree, ou, slapd, tree  # noqa: F401 - fixtures
from tests.helpers import user_body
from tests.jobs.conftest import add_users, lid_source, run_job, stats, system
from tests.proxy.conftest import PROXY_PATH, proxy_system

USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "42",
    "userName": "ada",
    "meta": {"resourceType": "User"},
}


class Recorder(BaseHTTPRequestHandler):
    """A SCIM back-end that records every request (method, raw path) and answers it."""

    seen: list[tuple[str, str]]

    def _answer(self) -> None:
        self.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.command == "DELETE":
            self.send_response(204)
            self.end_headers()
            return
        body = orjson.dumps(USER)
        self.send_response(200)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def backend() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    handler = type("Recording", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2", seen
    finally:
        server.shutdown()
        server.server_close()


def raw_request(
    server: LiveServer, auth: tuple[str, str], method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    """A request whose path goes out byte for byte (no client normalises ``.`` or ``..``)."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Accept": "application/scim+json"}
    content = None
    if body is not None:
        content = orjson.dumps(body)
        headers["Content-Type"] = "application/scim+json"
    try:
        conn.request(method, path, body=content, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, (orjson.loads(data) if data else {})


PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "displayName", "value": "x"}],
}
BAD_IDS = (".", "..", "%2e%2e", "%2E", "%2e", ".%2e", "%00", "a%00b", "%0a", "%7f")


def test_proxy_ids_never_leave_one_backend_segment(
    server: LiveServer, backend: tuple[str, list[tuple[str, str]]]
) -> None:
    url, seen = backend
    system = proxy_system(
        server,
        type="SCIM System",
        properties={"URL": url, "Authentication": "NoAuthentication"},
    )
    auth = server.new_client("proxy_api")
    base = f"{PROXY_PATH}/{system.id}/Users"
    for bad in BAD_IDS:
        for method, body in (("DELETE", None), ("PUT", user_body("ada")), ("PATCH", PATCH)):
            status, answer = raw_request(server, auth, method, f"{base}/{bad}", body)
            assert status in (400, 404), (method, bad, status, answer)
            assert answer.get("schemas") == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert "\x00" not in str(answer)
    assert seen == [], "no request reached the back-end"

    # A good id still reaches its one segment, encoded.
    status, _ = raw_request(server, auth, "DELETE", f"{base}/42")
    assert status == 204
    assert seen == [("DELETE", "/v2/Users/42")]


def test_path_segment_refuses_what_is_no_segment() -> None:
    for bad in ("", ".", "..", "/", "a/b", "a\x00b", "\n", "a\x7f", "a\u2028b"):
        with pytest.raises(InvalidId):
            path_segment(bad)
    assert path_segment("a b?#%") == "a%20b%3F%23%25"
    assert path_segment("...") == "..."
    assert path_segment("ünï") == "%C3%BCn%C3%AF"


# -- LDAP -----------------------------------------------------------------------------------------


def test_within_compares_rdn_by_rdn() -> None:
    base = "ou=people,dc=example,dc=org"
    assert within("uid=a,ou=People,DC=example,dc=org", base)
    assert not within(base, base), "the base itself is no entity"
    assert not within("uid=a,ou=other,dc=example,dc=org", base)
    assert not within("uid=a\\,ou=people,dc=example,dc=org", base), "an escaped comma"
    assert not within("not a dn", base)


@pytest.mark.anyio
async def test_ldap_dn_ids_stay_below_the_base(tree: Tree) -> None:  # noqa: F811
    other = f"ou=other,{tree.base}"
    victim = f"uid=victim,{other}"
    tree.server.add([ou(other), (victim, tree.user("victim")[1])])
    by_dn = {"ldap.attribute.user.id": "distinguishedName"}
    async with tree.connector(**by_dn) as target:
        assert await target.get("user", victim) is None
        assert await target.find("user", "distinguishedName", victim) == []
        with pytest.raises(InvalidId):
            await target.update("user", victim, {"sn": ["Changed"]})
        with pytest.raises(InvalidId):
            await target.delete("user", victim)
        with pytest.raises(InvalidId):
            await target.delete("user", tree.people)
        fake = f"uid=fake\\,{tree.people}"  # an RDN below the tree's base, not below people
        with pytest.raises(InvalidId):
            await target.create("user", {"cn": ["f"], "sn": ["F"]}, entity_id=fake)
        with pytest.raises(InvalidId):
            await target.create("user", {"cn": ["n"], "sn": ["N"]}, entity_id=f"uid=n,{other}")
        inside = await target.create(
            "user", {"cn": ["in"], "sn": ["I"]}, entity_id=f"uid=in,{tree.people}"
        )
        assert inside.id == f"uid=in,{tree.people}"
    entry = tree.server.entry(victim)
    assert entry is not None and entry["sn"] == ["Test"], "the entry outside was left alone"
    assert tree.server.entry(f"uid=n,{other}") is None
    assert tree.server.entry(f"uid=fake\\,{tree.people}") is None


# -- jobs -----------------------------------------------------------------------------------------


def test_a_job_refuses_source_ids_no_database_keeps_alike(services: Services) -> None:
    """A NUL in a source id: PostgreSQL cannot store it, SQLite can; both fail the entity."""
    add_users(services, "ada", "grace")
    source = lid_source(services)
    system(
        services,
        name="Files",
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={"csv.user.file": "nul-users.csv", "csv.group.file": "nul-groups.csv"},
    )
    read = {
        "user": {
            "mappings": [
                {"sourcePath": "$.userName", "targetVariable": "name"},
                {"constant": "id\u0000", "targetVariable": "entityIdSourceSystem"},
                {"sourcePath": "$.schemas", "targetPath": "$.schemas"},
                {"sourcePath": "$.userName", "targetPath": "$.userName"},
            ]
        }
    }
    services.systems.save_transformation(
        Context.administrator("test"),
        source.id,
        "read",
        read,
        description="ids with a NUL",
    )
    job = run_job(services, "LID", JobType.READ, trace=True)
    assert job.status is JobStatus.FINISHED_WITH_ERROR, job
    assert stats(job, "LID")["failed"] == 2
    assert not stats(job, "Files").get("created")
    assert "unexpected" not in (job.error or ""), job.error
    _, data = services.jobs.export(Context.administrator("test"), job.id, "allErrorsLog")
    archive = zipfile.ZipFile(io.BytesIO(data))
    logged = b"".join(archive.read(name) for name in archive.namelist())
    assert b"is no id" in logged and b"\x00" not in logged


def test_a_realtime_push_refuses_ids_no_database_keeps(server: LiveServer) -> None:
    """Fuzz finding F3: an entity id over 512 characters was a 500 on PostgreSQL (the log's
    column), while SQLite kept it; NUL alike. Both databases answer the same SCIM 400."""
    source = lid_source(server.services)
    base = f"/ipsproxy/service/api/v1/systems/{source.id}/entities/user"
    with server.client(auth=server.new_client("realtime_api"), path="") as api:
        for bad in ("x" * 513, "a\x00b"):
            entity = user_body("ada") | {"id": bad}
            pushed = api.post(base, json=entity)
            assert pushed.status_code == 400, pushed.text
            assert pushed.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert "NUL" in pushed.json()["detail"] or "512 characters" in pushed.json()["detail"]
        replaced = api.put(f"{base}/{'y' * 513}", json=user_body("ada"))
        assert replaced.status_code == 400 and "512 characters" in replaced.json()["detail"]


@pytest.mark.anyio
async def test_ids_a_back_end_answers_are_checked_like_source_ids(
    backend: tuple[str, list[tuple[str, str]]],
) -> None:
    """A back-end answering a create with an id no database keeps (NUL, over 512 characters)
    gave the job an id that broke its commit on PostgreSQL: now the write fails clearly."""
    url, _ = backend
    config = ConnectorConfig("t-1", "Target", Role.TARGET, {"URL": url}, {})
    for bad in ("a\x00b", "x" * 513):
        USER["id"] = bad
        try:
            async with SCIMConnector(config) as connector:
                with pytest.raises(BackendError, match="no id"):
                    await connector.create("user", {"userName": "ada"})
        finally:
            USER["id"] = "42"
