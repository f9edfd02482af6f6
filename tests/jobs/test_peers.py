"""Jobs against real peers: another provisor over SCIM, slapd, CSV sources, a throttling
target, and a target that fails while the others carry on."""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import ldap  # type: ignore[import-untyped]
import pytest

from provisor.context import Context
from provisor.jobs.model import JobStatus, JobType
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import SystemChanges
from provisor.types import EntityType
from tests.conftest import LiveServer, serve
from tests.connectors.ldap_server import LDAPServer, running_slapd
from tests.connectors.scim_peers import scim2_server
from tests.helpers import group_body, user_body
from tests.jobs.conftest import add_users, lid_source, remote_scim_target, run_job, stats, system

pytestmark = pytest.mark.slow  # whole jobs against peer servers (scim2-server, slapd)

CTX = Context.system("tests")  # the service calls a test makes directly

LDAP_PEOPLE = "ou=people,dc=example,dc=org"
LDAP_GROUPS = "ou=groups,dc=example,dc=org"


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[LiveServer]:
    with serve(Settings(data_dir=tmp_path / "remote")) as live:
        yield live


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LDAPServer]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        server.add(
            (dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]})
            for dn in (LDAP_PEOPLE, LDAP_GROUPS)
        )
        yield server


def scim_target(services: Services, source_id: str, live: LiveServer, **properties: str) -> Any:
    retry = {"ips.failed.request.retry.attempts.interval": "1"}
    return remote_scim_target(services, source_id, live, **{**retry, **properties})


def ldap_properties(server: LDAPServer, **extra: str) -> dict[str, str]:
    return {
        "ldap.url": server.url,
        "ldap.user": server.bind_dn,
        "ldap.password": server.password,
        "ldap.user.path": LDAP_PEOPLE,
        "ldap.group.path": LDAP_GROUPS,
        **extra,
    }


def test_directory_to_another_provisor_with_groups(services: Services, remote: LiveServer) -> None:
    ids = add_users(services, "ann", "bob", "cid")
    group = services.directory.create(
        CTX, EntityType.GROUP, group_body("Ops", list(ids.values())), "/scim"
    )
    source = lid_source(services)
    scim_target(services, source.id, remote)
    # Groups: the SCIM System default ignores them; provision them too.
    write = json.loads(
        services.systems.transformation(Context.system("test"), "Remote", "write").text
    )
    write["group"]["ignore"] = False
    services.systems.save_transformation(
        Context.administrator("t"),
        "Remote",
        "write",
        write,
        description="with groups",
    )
    job = run_job(services, "LID")
    assert job.status is JobStatus.SUCCESS, job.error
    with remote.client(path="/scim") as client:
        users = {u["userName"]: u["id"] for u in client.get("/Users").json()["Resources"]}
        groups = client.get("/Groups").json()["Resources"]
    assert set(users) == {"ann", "bob", "cid"}
    [ops] = groups
    assert sorted(m["value"] for m in ops["members"]) == sorted(users.values())

    services.directory.patch(
        CTX,
        EntityType.GROUP,
        group.id,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": f'members[value eq "{ids["cid"]}"]'}],
        },
        "/scim",
    )
    again = run_job(services, "LID")
    assert stats(again, "Remote", "group")["updated"] == 1
    # cid's groups changed in the directory: its read representation changed too
    assert (stats(again, "Remote")["unchanged"], stats(again, "Remote")["updated"]) == (2, 1)
    with remote.client(path="/scim") as client:
        ops = client.get("/Groups").json()["Resources"][0]
    assert sorted(m["value"] for m in ops["members"]) == sorted([users["ann"], users["bob"]])


def test_directory_to_scim2_server(services: Services) -> None:
    """An independent SCIM 2.0 implementation as the target, with the default
    transformations: users and groups arrive, without the SAP extensions it does not
    declare; then update and delete."""
    ids = add_users(services, "ann", "bob", "cid")
    services.directory.create(CTX, EntityType.GROUP, group_body("Ops", list(ids.values())), "/scim")
    with scim2_server() as peer:
        source = lid_source(services)
        system(
            services,
            name="scim2-server",
            type="scim",
            role="target",
            sourceSystemIds=[source.id],
            properties={"URL": peer.url, "Authentication": "NoAuthentication"},
        )
        first = run_job(services, "LID")
        assert first.status is JobStatus.SUCCESS, [
            r.reason for r in services.jobs.entity_logs(Context.administrator("test"), first.id)[0]
        ]
        assert stats(first, "scim2-server")["created"] == 3
        assert stats(first, "scim2-server", "group")["created"] == 1
        assert "Target scim2-server does not declare " in (first.outcome or "")
        with httpx.Client(base_url=peer.url) as client:
            users = {u["userName"]: u for u in client.get("/Users").json()["Resources"]}
            [ops] = client.get("/Groups").json()["Resources"]
        assert set(users) == {"ann", "bob", "cid"}
        assert sorted(m["value"] for m in ops["members"]) == sorted(u["id"] for u in users.values())

        services.directory.replace(
            CTX, EntityType.USER, ids["ann"], user_body("ann", displayName="Ann the Admin"), "/scim"
        )
        services.directory.delete(CTX, EntityType.USER, ids["cid"])
        second = run_job(services, "LID")
        assert second.status is JobStatus.SUCCESS, [
            r.reason for r in services.jobs.entity_logs(Context.administrator("test"), second.id)[0]
        ]
        assert stats(second, "scim2-server")["updated"] == 1
        assert stats(second, "scim2-server")["deleted"] == 1
        with httpx.Client(base_url=peer.url) as client:
            after = {u["userName"]: u for u in client.get("/Users").json()["Resources"]}
        assert set(after) == {"ann", "bob"}
        assert after["ann"]["displayName"] == "Ann the Admin"


def test_directory_to_ldap_and_back(services: Services, slapd: LDAPServer) -> None:
    add_users(services, "lena", "omar")
    source = lid_source(services)
    system(
        services,
        name="OpenLDAP",
        type="ldap",
        role="target",
        sourceSystemIds=[source.id],
        properties=ldap_properties(slapd),
    )
    job = run_job(services, "LID")
    assert job.status is JobStatus.SUCCESS, [
        e.reason for e in services.jobs.entity_logs(Context.administrator("test"), job.id)[0]
    ]
    conn = slapd.connect()
    found = conn.search_s(LDAP_PEOPLE, 2, "(uid=lena)", ["uid", "sn", "mail"])
    assert found and found[0][1]["mail"] == [b"lena@example.com"]

    # The same directory tree read back by an LDAP source into another directory.
    system(
        services,
        name="LDAP in",
        type="ldap",
        role="source",
        properties=ldap_properties(slapd),
    )
    lid_target = system(
        services,
        name="Directory copy",
        type="csv",
        role="target",
        sourceSystemIds=[services.systems.get(Context.system("test"), "LDAP in").id],
        properties={"csv.user.file": str(Path(services.settings.data_dir) / "from-ldap.csv")},
    )
    back = run_job(services, "LDAP in")
    assert back.status is JobStatus.SUCCESS, back.error
    assert stats(back, lid_target.name)["created"] >= 2
    with (Path(services.settings.data_dir) / "from-ldap.csv").open() as handle:
        names = {row["userName"] for row in csv.DictReader(handle)}
    assert {"lena", "omar"} <= names


def next_second() -> None:
    """Wait until the clock enters the next second (modifyTimestamp's unit)."""
    time.sleep(1.02 - time.time() % 1)


def test_delta_jobs_carry_group_membership_changes(
    sqlite_services: Services, slapd: LDAPServer
) -> None:
    services, base = sqlite_services, "ou=delta,dc=example,dc=org"
    people, groups = f"ou=people,{base}", f"ou=groups,{base}"
    dns = {name: f"uid={name},{people}" for name in ("ann", "ben", "zed")}
    slapd.add(
        [
            *((dn, {"objectClass": ["organizationalUnit"]}) for dn in (base, people, groups)),
            *(
                (dn, {"objectClass": ["inetOrgPerson"], "uid": [n], "cn": [n], "sn": [n]})
                for n, dn in dns.items()
            ),
            (f"cn=Sales,{groups}", {"objectClass": ["groupOfNames"], "member": [dns["ann"]]}),
        ]
    )
    properties = ldap_properties(slapd, **{"ldap.user.path": people, "ldap.group.path": groups})
    source = system(
        services,
        name="LDAP delta",
        type="ldap",
        role="source",
        properties={**properties, "ips.delta.read": "enabled"},
    )
    out = Path(services.settings.data_dir) / "delta.csv"
    system(
        services,
        name="CSV",
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={"csv.user.file": str(out)},
    )

    def change_sales(operation: int) -> dict[str, list[str]]:
        """Change ben's membership of Sales, run a (delta) job: the groups of each row."""
        next_second()
        conn = slapd.connect()
        conn.modify_s(f"cn=Sales,{groups}", [(operation, "member", [dns["ben"].encode()])])
        conn.unbind_s()
        job = run_job(services, "LDAP delta")
        assert job.status is JobStatus.SUCCESS, job.error
        assert stats(job, "CSV")["updated"] == 1  # ben, and only ben
        with out.open() as handle:
            rows = list(csv.DictReader(handle))
        return {
            r["userName"]: [v for k, v in r.items() if k.startswith("groups") and v] for r in rows
        }

    next_second()  # the full read's token lies after the users' creation
    conn = slapd.connect()
    conn.modify_s(dns["zed"], [(ldap.MOD_REPLACE, "title", [b"marks the token"])])
    conn.unbind_s()
    full = run_job(services, "LDAP delta")
    assert full.status is JobStatus.SUCCESS, full.error
    assert stats(full, "CSV")["created"] == 3
    assert change_sales(ldap.MOD_ADD)["ben"] == ["Sales"]
    assert change_sales(ldap.MOD_DELETE)["ben"] == []


def test_csv_source_to_the_directory(services: Services, tmp_path: Path) -> None:
    source_file = tmp_path / "hr.csv"
    source_file.write_text(
        "id,userName,name.givenName,name.familyName,emails[0].value\n"
        "1,hugo,Hugo,Stein,hugo@example.com\n"
        "2,ines,Ines,Berg,ines@example.com\n",
        encoding="utf-8",
    )
    source = system(
        services,
        name="HR CSV",
        type="csv",
        role="source",
        properties={"csv.user.file": str(source_file)},
    )
    system(
        services,
        name="Directory",
        type="local-identity-directory",
        role="target",
        sourceSystemIds=[source.id],
    )
    job = run_job(services, "HR CSV")
    assert job.status is JobStatus.SUCCESS, [
        e.reason for e in services.jobs.entity_logs(Context.administrator("test"), job.id)[0]
    ]
    assert stats(job, "Directory")["created"] == 2
    found = services.jobs.operational(Context.system("test")).records(
        source.id, services.systems.get(Context.system("test"), "Directory").id, "user", ["1", "2"]
    )
    assert set(found) == {"1", "2"}


class _Throttling(BaseHTTPRequestHandler):
    """A SCIM target answering every other request with 429 and Retry-After: 1."""

    calls = 0
    created: list[dict[str, Any]] = []  # noqa: RUF012
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        return None

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            type(self).calls += 1
            throttle = type(self).calls % 2 == 1
            if not throttle:
                body["id"] = f"t{len(self.created)}"
                self.created.append(body)
        if throttle:
            self._answer(429, {"detail": "slow down"}, {"Retry-After": "1"})
        else:
            self._answer(201, body)


def test_a_throttling_target_gets_everything(services: Services) -> None:
    add_users(services, *(f"t{i}" for i in range(6)))
    _Throttling.calls, _Throttling.created = 0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = lid_source(services)
        system(
            services,
            name="Throttled",
            type="scim",
            role="target",
            sourceSystemIds=[source.id],
            properties={
                "URL": f"http://127.0.0.1:{server.server_port}/scim",
                "Authentication": "NoAuthentication",
                "ips.failed.request.retry.attempts.interval": "1",
            },
        )
        job = run_job(services, "LID")
    finally:
        server.shutdown()
        server.server_close()
    assert job.status is JobStatus.SUCCESS, job.error
    assert stats(job, "Throttled")["created"] == 6
    assert sorted(u["userName"] for u in _Throttling.created) == [f"t{i}" for i in range(6)]


def test_a_failing_target_does_not_stop_the_others(
    services: Services, remote: LiveServer, tmp_path: Path
) -> None:
    add_users(services, "p1", "p2")
    source = lid_source(services)
    scim_target(services, source.id, remote, Password="wrong")
    system(
        services,
        name="CSV",
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={"csv.user.file": str(tmp_path / "ok.csv")},
    )
    job = run_job(services, "LID")
    assert job.status is JobStatus.FINISHED_WITH_ERROR
    assert "Target Remote" in (job.error or "")
    assert stats(job, "CSV")["created"] == 2
    assert "No users deleted in Remote" in (job.outcome or "")
    services.systems.update(
        Context.administrator("t"),
        "Remote",
        SystemChanges(properties={"Password": remote.admin[1]}),
    )
    fixed = run_job(services, "LID", JobType.READ)
    assert fixed.status is JobStatus.SUCCESS and stats(fixed, "Remote")["created"] == 2


def _with_groups(services: Services, name: str, *removed: str) -> None:
    """A target's write transformation with groups provisioned too (and attributes removed)."""
    write = json.loads(services.systems.transformation(Context.system("test"), name, "write").text)
    write["group"]["ignore"] = False
    write["user"]["mappings"] += [{"type": "remove", "targetPath": path} for path in removed]
    services.systems.save_transformation(
        Context.administrator("t"),
        name,
        "write",
        write,
        description="groups",
    )


def _csns(slapd: LDAPServer, base: str, names: list[str]) -> dict[str, bytes]:
    """entryCSN of each named entry under base (slapd changes it on every write)."""
    conn = slapd.connect()
    wanted = "".join(f"(cn={n})(uid={n})" for n in names)
    found = conn.search_s(base, 2, f"(|{wanted})", ["entryCSN"])
    return {dn: attrs["entryCSN"][0] for dn, attrs in found}


def test_a_changed_property_rewrites_nothing(
    sqlite_services: Services, slapd: LDAPServer, tmp_path: Path
) -> None:
    """Entities created and never updated are not written again when a job re-evaluates them
    all (a property of the source changed): the hash stored on create is the one an update
    compares with, in SCIM, LDAP and CSV targets, for users and groups."""
    services = sqlite_services
    names = ["rw-ann", "rw-bob", "rw-cid"]
    ids = add_users(services, *names)
    services.directory.create(
        CTX, EntityType.GROUP, group_body("rw-ops", list(ids.values())), "/scim"
    )
    source = lid_source(services)
    users_csv, groups_csv = tmp_path / "users.csv", tmp_path / "groups.csv"
    with scim2_server() as peer:
        system(
            services,
            name="SCIM",
            type="scim",
            role="target",
            sourceSystemIds=[source.id],
            properties={"URL": peer.url, "Authentication": "NoAuthentication"},
        )
        system(
            services,
            name="LDAP",
            type="ldap",
            role="target",
            sourceSystemIds=[source.id],
            properties=ldap_properties(slapd),
        )
        system(
            services,
            name="CSV",
            type="csv",
            role="target",
            sourceSystemIds=[source.id],
            properties={"csv.user.file": str(users_csv), "csv.group.file": str(groups_csv)},
        )
        _with_groups(services, "SCIM", "$['urn:sap:cloud:scim:schemas:extension:custom:2.0:User']")
        _with_groups(services, "LDAP")
        first = run_job(services, "LID")
        assert first.status is JobStatus.SUCCESS, [
            e.reason for e in services.jobs.entity_logs(Context.administrator("test"), first.id)[0]
        ]
        for target in ("SCIM", "LDAP", "CSV"):
            assert (stats(first, target)["created"], stats(first, target, "group")["created"]) == (
                3,
                1,
            ), target
        writes = sum(1 for method, _ in peer.requests if method != "GET")
        csns = _csns(slapd, "dc=example,dc=org", [*names, "rw-ops"])
        assert len(csns) == 4
        files = users_csv.read_bytes(), groups_csv.read_bytes()
        stamps = users_csv.stat().st_mtime_ns, groups_csv.stat().st_mtime_ns

        services.systems.update(
            Context.administrator("t"),
            "LID",
            SystemChanges(properties={"ips.trace.created.entity": "true"}),
        )
        again = run_job(services, "LID")

        assert again.status is JobStatus.SUCCESS, again.error
        for target in ("SCIM", "LDAP", "CSV"):
            for entity_type, count in (("user", 3), ("group", 1)):
                counts = stats(again, target, entity_type)
                assert (counts["unchanged"], counts["updated"]) == (count, 0), (target, counts)
        assert sum(1 for method, _ in peer.requests if method != "GET") == writes
    assert _csns(slapd, "dc=example,dc=org", [*names, "rw-ops"]) == csns
    assert (users_csv.read_bytes(), groups_csv.read_bytes()) == files
    assert (users_csv.stat().st_mtime_ns, groups_csv.stat().st_mtime_ns) == stamps
