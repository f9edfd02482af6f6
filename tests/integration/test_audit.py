"""The audit log: each tenant's records one hash chain that verify checks (a record changed,
removed or cut off by SQL is named), retention that keeps the chain verifiable, concurrent
writers on PostgreSQL, every kind of change and sign-in recorded with no secret, and the
views (admin API, operator API, CLI, console)."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.exc import DBAPIError

from provisor.admins.model import Role, SsoSettings
from provisor.audit.service import Filters
from provisor.context import ANY_TENANT, INSTALLATION, Context
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import tables as t
from provisor.systems.model import SystemChanges
from tests.conftest import CLI, LiveServer, cli_for
from tests.integration.test_systems import scim_target

ADA = Context.administrator("cli:ada", request_id="req-1")


def rows(services: Services, tenant: str = "default") -> list[dict[str, Any]]:
    with services.db.unscoped_read() as conn:
        found = conn.execute(
            select(t.audit_log).where(t.audit_log.c.tenant == tenant).order_by(t.audit_log.c.id)
        )
        return [dict(r) for r in found.mappings()]


@contextmanager
def behind_provisors_back(services: Services) -> Iterator[Connection]:
    """A transaction changing audit records by SQL: on PostgreSQL as the tables' owner who
    first disables the append-only trigger (as whoever tampers would)."""
    with services.db.unscoped_write() as conn:
        if not services.db.is_sqlite:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        yield conn
        if not services.db.is_sqlite:
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def changes(services: Services) -> None:
    """A few audited changes in the default tenant."""
    target = services.systems.create(ADA, scim_target())
    services.systems.update(ADA, target.id, SystemChanges(description="HR"))
    services.systems.set_enabled(ADA, target.id, False)
    services.systems.delete(ADA, target.id)


def test_the_chain_verifies_and_names_a_tampered_record(services: Services) -> None:
    changes(services)
    audit = services.audit
    assert audit.verify(ADA).ok and audit.verify(ADA).checked == 4
    records = rows(services)
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert [r["prev_hash"] for r in records[1:]] == [r["hash"] for r in records[:-1]]
    second = records[1]["id"]
    with behind_provisors_back(services) as conn:
        conn.execute(update(t.audit_log).where(t.audit_log.c.id == second).values(actor="mallory"))
    verdict = audit.verify(ADA)
    assert (verdict.ok, verdict.broken_id, verdict.broken_seq) == (False, second, 2)
    assert "does not match its hash" in verdict.reason
    # every tenant's at once (the local CLI's): the installation's chain is intact
    verdicts = {v.tenant: v for v in audit.verify_all(Context.system("cli", tenant=ANY_TENANT))}
    assert verdicts["default"].broken_id == second


def test_a_removed_record_and_a_cut_off_tail_are_found(services: Services) -> None:
    changes(services)
    records = rows(services)
    with behind_provisors_back(services) as conn:
        conn.execute(delete(t.audit_log).where(t.audit_log.c.id == records[1]["id"]))
    verdict = services.audit.verify(ADA)
    assert (verdict.broken_id, verdict.broken_seq) == (records[2]["id"], 3)
    assert "missing" in verdict.reason
    with behind_provisors_back(services) as conn:  # the newest removed instead
        conn.execute(delete(t.audit_log).where(t.audit_log.c.id > records[0]["id"]))
    verdict = services.audit.verify(ADA)
    assert not verdict.ok and verdict.broken_id is None and "newest" in verdict.reason


def test_postgresql_refuses_changes_of_audit_records(pg_database: str, tmp_path: Path) -> None:
    services = Services.open(Settings(data_dir=tmp_path, database_url=pg_database))
    try:
        changes(services)
        for statement in (
            update(t.audit_log).values(actor="mallory"),
            delete(t.audit_log).where(t.audit_log.c.action == "system.create"),
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                with services.db.unscoped_write() as conn:
                    conn.execute(statement)
        assert services.audit.verify(ADA).ok and services.audit.verify(ADA).checked == 4
    finally:
        services.close()


def test_retention_purges_old_records_and_the_chain_still_verifies(settings: Settings) -> None:
    services = Services.open(settings.model_copy(update={"audit_retention_days": 30}))
    try:
        changes(services)
        maintenance = Context.system("maintenance", tenant=ANY_TENANT)
        assert services.audit.purge(maintenance) == {}  # nothing is 30 days old
        later = datetime.now(UTC) + timedelta(days=31)
        assert services.audit.purge(maintenance, moment=later) == {"default": 3}
        kept = rows(services)
        assert [r["action"] for r in kept] == ["system.delete", "audit.purge"]
        assert kept[1]["detail"] and json.loads(kept[1]["detail"])["deleted"] == 3
        verdict = services.audit.verify(ADA)
        assert verdict.ok and verdict.checked == 2
        forever = Services.open(settings.model_copy(update={"audit_retention_days": 0}))
        try:
            assert forever.audit.purge(maintenance, moment=later + timedelta(days=999)) == {}
        finally:
            forever.close()
    finally:
        services.close()


@pytest.mark.slow
def test_concurrent_writers_on_postgresql_keep_one_chain(pg_database: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=pg_database)
    services = Services.open(settings)
    try:
        errors: list[BaseException] = []

        def write(n: int) -> None:
            try:
                ctx = Context.administrator(f"writer-{n}")
                for i in range(15):
                    with services.db.write(ctx) as tx:
                        tx.audit("test.write", f"{n}-{i}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        records = rows(services)
        assert [r["seq"] for r in records] == list(range(1, 91))
        verdict = services.audit.verify(ADA)
        assert verdict.ok and verdict.checked == 90
    finally:
        services.close()


def test_every_kind_of_change_is_recorded_without_secrets(services: Services) -> None:
    secrets = ["s3cret-Pa55", "t0k3n-XYZ-secret", "admin-pass-123456", "sso-client-secret-42"]
    target = services.systems.create(ADA, scim_target())
    services.systems.update(
        ADA,
        target.id,
        SystemChanges(description="HR", properties={"User": "sync2"}),
        credentials={"Token": secrets[1]},
    )
    row, creds = services.clients.create(ADA, "feeder", ["manage_users"])
    secrets.append(creds.client_secret)
    services.clients.rotate_secret(ADA, row.id) if hasattr(
        services.clients, "rotate_secret"
    ) else None
    services.administrators.create(ADA, "grace", Role.ADMINISTRATOR, secrets[2])
    services.administrators.set_sso(
        ADA,
        SsoSettings(
            label="Corp",
            issuer="https://idp.example.org",
            client_id="provisor",
            client_secret=secrets[3],
            role_claim="groups",
            administrator_values=("admins",),
            viewer_values=(),
            scopes="openid",
        ),
    )
    services.directory.catalog.create(
        ADA,
        {
            "id": "urn:example:params:scim:schemas:extension:acme:2.0:User",
            "name": "User",
            "attributes": [{"name": "badge", "type": "string"}],
        },
    )
    services.tenants.create(Context.system("op", tenant=INSTALLATION), "acme")
    services.tenants.update(Context.system("op", tenant=INSTALLATION), "acme", enabled=False)
    services.tenants.delete(Context.system("op", tenant=INSTALLATION), "acme")
    actions = [r["action"] for r in rows(services)]
    for wanted in (
        "system.create",
        "system.update",
        "client.create",
        "administrator.create",
        "console.sso.set",
        "schema.create",
    ):
        assert wanted in actions, (wanted, actions)
    update_detail = json.loads(
        next(r for r in rows(services) if r["action"] == "system.update")["detail"]
    )
    assert update_detail["credentials"] == ["Token"]
    assert update_detail["before"] == {"User": "sync"} and update_detail["after"] == {
        "User": "sync2"
    }
    installation = [r["action"] for r in rows(services, INSTALLATION)]
    assert installation == ["tenant.create", "tenant.update", "tenant.delete"]
    changed = json.loads(rows(services, INSTALLATION)[1]["detail"])
    assert (changed["before"]["enabled"], changed["after"]["enabled"]) == (True, False)
    assert rows(services, "acme") == []  # the deleted tenant's chain went with it
    with services.db.unscoped_read() as conn:
        heads = set(conn.execute(select(t.audit_heads.c.tenant)).scalars())
        everything = json.dumps([dict(r) for r in conn.execute(select(t.audit_log)).mappings()])
    assert "acme" not in heads
    for secret in secrets:
        assert secret not in everything, secret


def _basic(client_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_sign_ins_tokens_and_failures_are_recorded_within_the_budget(
    sqlite_server: LiveServer,
) -> None:
    live = sqlite_server
    client_id, secret = live.admin
    with httpx.Client(base_url=live.url, timeout=30) as http:
        issued = http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={**_basic(client_id, secret), "X-Request-ID": "tok-1"},  # not trusted
        )
        assert issued.status_code == 200
        token = issued.json()["access_token"]
        for _ in range(3):  # API calls are no sign-ins: no record each
            assert http.get("/api/v1/systems", auth=live.admin).status_code == 200
            assert (
                http.get(
                    "/api/v1/systems", headers={"Authorization": f"Bearer {token}"}
                ).status_code
                == 200
            )
        assert http.get("/api/v1/systems").status_code == 401  # no credentials: not a sign-in
        budget = live.settings.auth_failures_per_minute
        answers = [
            http.get("/api/v1/systems", auth=(client_id, f"wrong-{n}")).status_code
            for n in range(budget + 3)
        ]
        assert 429 in answers
    records = rows(live.services)
    tokens = [r for r in records if r["action"] == "client.token"]
    assert len(tokens) == 1 and tokens[0]["request_id"] == issued.headers["x-request-id"] != "tok-1"
    assert tokens[0]["address"] == "127.0.0.1" and tokens[0]["actor"] == "initial-admin"
    failures = [r for r in records if r["action"] == "client.authentication.failure"]
    # each 401 recorded, none of the refusals (429: the address's budget or the id's backoff)
    assert len(failures) == answers.count(401) >= 1
    assert {r["target"] for r in failures} == {client_id}
    assert all("wrong-" not in r["detail"] for r in failures)
    assert live.services.audit.verify(ADA).ok


def test_the_csv_export_quotes_what_a_spreadsheet_would_run(sqlite_server: LiveServer) -> None:
    live = sqlite_server
    formula = "=SUM(A1;A2)"  # no colon: HTTP Basic ends the client id at the first one
    with live.client() as http:
        refused = http.get("/api/v1/systems", auth=(formula, "wrong-secret-1234"))
        assert refused.status_code == 401
        text = http.get("/api/v1/audit/export?format=csv").text
    table = list(csv.DictReader(io.StringIO(text)))
    failed = [row for row in table if row["action"] == "client.authentication.failure"]
    assert [(row["actor"], row["target"]) for row in failed] == [("'" + formula, "'" + formula)]


def test_the_admin_api_lists_exports_and_verifies(sqlite_server: LiveServer) -> None:
    live = sqlite_server
    done = ["system.disable", "system.delete"]
    changes(live.services)
    with live.client() as http:
        page = http.get("/api/v1/audit", params={"limit": 2}).json()
        assert [r["action"] for r in page["items"]] == ["system.delete", "system.disable"]
        rest = http.get("/api/v1/audit", params={"before": page["next"], "action": "system."})
        assert [r["action"] for r in rest.json()["items"]] == ["system.update", "system.create"]
        assert rest.json()["next"] is None
        assert page["items"][0]["actor"] == "cli:ada" and page["items"][0]["requestId"] == "req-1"
        since = http.get("/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"}).json()
        assert since["items"] == []
        bad = http.get("/api/v1/audit", params={"since": "yesterday"})
        assert bad.status_code == 400 and "ISO 8601" in bad.json()["detail"]
        lines = http.get("/api/v1/audit/export", params={"action": "system."})
        assert lines.headers["content-type"].startswith("application/x-ndjson")
        exported = [json.loads(line) for line in lines.text.splitlines()]
        assert [r["action"] for r in exported] == ["system.create", "system.update", *done]
        seqs = [r["seq"] for r in exported]
        assert seqs == list(range(seqs[0], seqs[0] + 4))  # after the initial admin's creation
        table = list(csv.DictReader(io.StringIO(http.get("/api/v1/audit/export?format=csv").text)))
        assert table[0]["action"] == "client.create"  # the initial admin, by provisor
        assert table[-1]["action"] == "system.delete" and table[-1]["hash"] == exported[-1]["hash"]
        assert http.get("/api/v1/audit/verify").json()["ok"] is True
    feeder = live.new_client("manage_users")
    with live.client(auth=feeder) as http:
        assert http.get("/api/v1/audit").status_code == 403
    with live.client(auth=live.new_client("view")) as http:  # read-only administration
        assert http.get("/api/v1/audit/verify").json()["ok"] is True


def test_the_operator_reads_the_installations_log_and_a_tenants(sqlite_server: LiveServer) -> None:
    live = sqlite_server
    operator = live.services.clients.create(
        Context.system("test", tenant=INSTALLATION), "op", ["operator"]
    )[1]
    with live.client(auth=(operator.client_id, operator.client_secret)) as http:
        assert http.post("/operator/v1/tenants", json={"name": "acme"}).status_code == 201
        mine = http.get("/operator/v1/audit").json()["items"]
        assert mine[0]["action"] == "tenant.create" and mine[0]["actor"] == "op"
        assert mine[0]["address"] == "127.0.0.1"
        theirs = http.get("/operator/v1/audit", params={"tenant": "acme"}).json()["items"]
        assert theirs and all(r["tenant"] == "acme" for r in theirs)
        assert http.get("/operator/v1/audit/verify", params={"tenant": "acme"}).json()["ok"]
        assert http.get("/operator/v1/audit", params={"tenant": "nope"}).status_code == 404
    with live.client() as http:  # a tenant's admin is no operator
        assert http.get("/operator/v1/audit").status_code in (401, 403)


def test_the_cli_lists_exports_and_verifies(cli: CLI, tmp_path: Path) -> None:
    changes(cli.server.services)
    listed = cli.invoke("audit", "list", "--action", "system.", "--limit", "2")
    assert "system.delete" in listed.stdout and "More: --before" in listed.stdout
    as_json = json.loads(cli.invoke("audit", "list", "--json", "--action", "system.").stdout)
    assert len(as_json["items"]) == 4
    cli.invoke("audit", "export", "--format", "csv", "--output", str(tmp_path / "a.csv"))
    assert (tmp_path / "a.csv").read_text().startswith("id,seq,at,")
    assert "chain intact" in cli.invoke("audit", "verify").stdout
    settings = cli.server.settings
    local = cli_for(cli.server, cli.cwd)
    local.env["PROVISOR_DATA_DIR"] = str(settings.data_dir)
    intact = local.invoke("audit", "verify", "--local").stdout
    assert "default: 6 records, chain intact" in intact  # the initial admins too
    with cli.server.services.db.unscoped_write() as conn:
        conn.execute(update(t.audit_log).where(t.audit_log.c.seq == 3).values(target="x"))
    broken = local.invoke("audit", "verify", "--local", check=False)
    assert broken.returncode == 1 and "default: BROKEN at record" in broken.stdout
    assert "(#3)" in broken.stdout and "_installation: " in broken.stdout


def test_filters_check_their_input() -> None:
    from provisor.errors import InputError

    with pytest.raises(InputError, match="ISO 8601"):
        Filters(until="soon")
    assert Filters(since="2026-12-05T10:00:00+01:00").since == "2026-12-05T09:00:00.000000Z"
