"""The hourly upkeep of outbound certificates over every tenant: each tenant's systems are
maintained in their tenant (its CA, its events), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from provisor.certs.x509 import load_certificate
from provisor.context import ANY_TENANT, DEFAULT_TENANT, Context
from provisor.runtime import Services
from provisor.storage import tables as t
from provisor.systems.model import NewSystem
from provisor.timestamps import now
from tests.certs.conftest import Clock


def test_the_upkeep_maintains_each_tenants_systems_in_their_tenant(
    services: Services, clock: Clock
) -> None:
    stamp = now()
    with services.db.unscoped_write() as conn:
        conn.execute(
            insert(t.tenants).values(
                name="b", kind="standalone", enabled=1, created=stamp, last_modified=stamp
            )
        )
    certs = services.certificates
    ids = {}
    for tenant in (DEFAULT_TENANT, "b"):
        ctx = Context.administrator("test", tenant=tenant)
        target = services.systems.create(
            ctx,
            NewSystem(
                name="ABAP",
                type="SCIM System",
                role="target",
                properties={"URL": "https://127.0.0.1:9/scim"},
            ),
        )
        ids[tenant] = target.id
        cert = certs.generate_outbound(ctx, target.id)
        certs.set_auto_regenerate(ctx, target.id, tenant == "b")
    clock.now = cert.details.not_after - timedelta(days=13)

    upkeep = Context.system("maintenance", tenant=ANY_TENANT)
    events = certs.maintain(upkeep)
    assert sorted((e.system_id, e.kind) for e in events) == sorted(
        [(ids[DEFAULT_TENANT], "expiring-14"), (ids["b"], "renewed")]
    )
    assert certs.maintain(upkeep) == [], "once"
    ev = t.certificate_events
    with services.db.unscoped_read() as conn:
        recorded = {
            (r.tenant, r.system_id) for r in conn.execute(select(ev.c.tenant, ev.c.system_id))
        }
    assert recorded == {(DEFAULT_TENANT, ids[DEFAULT_TENANT]), ("b", ids["b"])}

    in_b = Context.system("test", tenant="b")
    renewed = next(c for c in certs.outbound(in_b, ids["b"]) if c.active)
    issued = load_certificate(certs.download(in_b, ids["b"], renewed.details.fingerprint))
    b_ca = load_certificate(certs.ca_pem(in_b))
    default_ca = load_certificate(certs.ca_pem(Context.system("test")))
    issued.verify_directly_issued_by(b_ca)  # renewed in b: by b's CA
    assert issued.issuer == b_ca.subject != default_ca.subject
