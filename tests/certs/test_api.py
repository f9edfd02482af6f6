"""The certificates' admin API at /api/v1 (SQLite and PostgreSQL): operations, errors as
problem JSON, permissions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from provisor.certs.x509 import pem
from provisor.connectors.base import Role
from provisor.context import Context
from provisor.systems.model import NewSystem
from tests.certs.conftest import self_signed
from tests.conftest import LiveServer


def _target(server: LiveServer) -> str:
    new = NewSystem(
        name="ABAP",
        type="SCIM System",
        role=Role.TARGET,
        properties={"URL": "https://127.0.0.1:9/scim"},
    )
    return server.services.systems.create(
        Context.administrator("test"),
        new,
    ).id


def _problem(answer: httpx.Response, status: int, text: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert text in answer.json()["detail"]


def test_outbound_certificates_over_the_api(server: LiveServer) -> None:
    target = _target(server)
    base = f"/api/v1/systems/{target}/outbound-certificates"
    with server.client() as api:
        ca = api.get("/api/v1/certificates/ca")
        assert ca.status_code == 200 and ca.headers["content-type"] == "application/x-pem-file"
        authority = x509.load_pem_x509_certificate(ca.content)

        first = api.post(base, json={"keyType": "EC-P256"})
        assert first.status_code == 201, first.text
        second = api.post(base)  # the defaults: RSA 2048, 365 days
        assert second.json()["keySize"] == 2048 and second.json()["status"] == "INACTIVE"
        _problem(api.post(base), 409, "already has 2 outbound certificates")
        _problem(api.post(base, json={"keyType": "RSA-512"}), 400, "Key type")
        assert api.post(base, json={"validityDays": 0}).status_code == 400

        listed = api.get(base).json()
        assert listed["autoRegeneration"] is False
        assert [c["status"] for c in listed["certificates"]] == ["ACTIVE", "INACTIVE"]
        fields = listed["certificates"][0]
        for key in ("subject", "issuer", "signatureAlgorithm", "validFrom", "validTo", "keySize"):
            assert fields[key]
        assert fields["expiry"] == {"state": "valid", "daysLeft": 365}

        fp1, fp2 = first.json()["fingerprint"], second.json()["fingerprint"]
        assert api.get(f"{base}/{fp1}").json()["status"] == "ACTIVE"
        download = api.get(f"{base}/{fp1}/download")
        assert "PRIVATE KEY" not in download.text
        x509.load_pem_x509_certificate(download.content).verify_directly_issued_by(authority)
        assert download.text.count("BEGIN CERTIFICATE") == 1
        assert api.get(f"{base}/{fp1}/download?chain=true").text.count("BEGIN CERTIFICATE") == 2

        assert api.post(f"{base}/{fp2}/activate").json()["status"] == "ACTIVE"
        assert api.get(f"{base}/{fp1}").json()["status"] == "INACTIVE"
        _problem(api.delete(f"{base}/{fp2}"), 409, "active certificate cannot be deleted")
        assert api.delete(f"{base}/{fp1}").status_code == 204
        _problem(api.get(f"{base}/{fp1}"), 404, "no outbound certificate")
        _problem(api.get("/api/v1/systems/nope/outbound-certificates"), 404, "nope")

        switched = api.put(f"{base}/auto-regeneration", json={"enabled": True})
        assert switched.json() == {"enabled": True}
        assert api.get(base).json()["autoRegeneration"] is True
        applied = api.post("/api/v1/certificates/maintain", params={"apply": "true"}).json()
        assert applied["applied"] is True and applied["events"] == []
        assert api.get("/api/v1/certificates/events?system=ABAP").json() == {"events": []}

    client_id, secret = server.new_client("proxy_api", "realtime_api", "tenant_admin_api")
    with server.client(auth=(client_id, secret)) as api:
        _problem(api.get(base), 403, "admin")
        _problem(api.get("/api/v1/certificates/ca"), 403, "admin")
        _problem(api.post("/api/v1/certificates/maintain"), 403, "admin")
    assert httpx.get(server.url + base).status_code == 401


def test_maintenance_rehearses_unless_applied_now(server: LiveServer) -> None:
    """Issue 16: a rehearsal is a dry run; applying takes no date, least of all a future one."""
    target = _target(server)
    base = f"/api/v1/systems/{target}/outbound-certificates"
    maintain = "/api/v1/certificates/maintain"
    with server.client() as api:
        active = api.post(base, json={"keyType": "EC-P256"}).json()
        api.put(f"{base}/auto-regeneration", json={"enabled": True})
        listed = api.get(base).json()
        assert (listed["systemId"], listed["systemName"]) == (target, "ABAP")
        until = datetime.fromisoformat(active["validTo"].replace("Z", "+00:00"))
        at = (until - timedelta(days=10)).replace(tzinfo=None).isoformat()

        rehearsal = api.post(maintain, params={"at": at})
        assert rehearsal.status_code == 200, rehearsal.text
        [renewal] = rehearsal.json()["events"]
        assert rehearsal.json()["applied"] is False
        assert rehearsal.json()["at"].startswith(at[:19])
        assert (renewal["kind"], renewal["systemName"]) == ("renewed", "ABAP")
        assert renewal["fingerprint"] == active["fingerprint"]
        assert "would be generated and activated" in renewal["detail"]
        assert api.get(base).json() == listed  # nothing issued, nothing activated
        assert api.get("/api/v1/certificates/events").json() == {"events": []}

        refused = api.post(maintain, params={"at": at, "apply": "true"})
        _problem(refused, 400, "a future time, on a live tenant")
        past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        _problem(api.post(maintain, params={"at": past, "apply": "true"}), 400, "current time")
        assert api.get(base).json() == listed

        assert api.post(maintain).json()["events"] == []  # a dry run now: nothing due
        applied = api.post(maintain, params={"apply": "true"}).json()
        assert applied == {"applied": True, "at": applied["at"], "events": []}


def test_inbound_certificates_over_the_api(server: LiveServer) -> None:
    client_id, _ = server.new_client("realtime_api")
    base = f"/api/v1/clients/{client_id}/certificates"
    cert, _ = self_signed("source app")
    with server.client() as api:
        as_json = api.post(base, json={"certificate": pem(cert)})
        assert as_json.status_code == 201, as_json.text
        assert as_json.json()["clientId"] == client_id
        client_name = as_json.json()["clientName"]
        assert client_name != client_id
        _problem(api.post(base, content=pem(cert)), 409, f"client {client_name} ({client_id})")
        _problem(api.post(base, content=b"garbage"), 400, "Not an X.509 certificate")
        _problem(
            api.post(base, content=b"{", headers={"content-type": "application/json"}), 400, "JSON"
        )
        _problem(api.post(base, json={"cert": "x"}), 400, "certificate")
        expired = pem(self_signed(days=-2, start=-9)[0])
        _problem(api.post(base, content=expired), 400, "expired on")
        _problem(api.post(base, content=b"x" * 70_000), 400, "at most 64 KiB")

        generated = api.post(
            f"{base}/generate", json={"commonName": "IAS", "password": "long enough"}
        )
        assert generated.status_code == 201
        _, issued, _ = pkcs12.load_key_and_certificates(generated.content, b"long enough")
        assert issued is not None
        assert issued.subject.rfc4514_string() == f"CN=IAS ({client_id})"
        fingerprint = generated.headers["x-certificate-fingerprint"]
        too_long = api.post(
            f"{base}/generate", json={"commonName": "x" * 30, "password": "12345678"}
        )
        _problem(too_long, 400, "more than 64")
        short = api.post(f"{base}/generate", json={"commonName": "a", "password": "1"})
        assert short.status_code == 400 and "password" in short.text

        listed = api.get(base).json()["certificates"]
        assert {c["generated"] for c in listed} == {True, False}
        assert all(c["name"] == f"cert_client_{c['fingerprint']}" for c in listed)
        everyone = api.get("/api/v1/inbound-certificates").json()["certificates"]
        assert [c["clientName"] for c in everyone] == [client_name] * 2
        assert api.delete(f"{base}/{fingerprint}").status_code == 204
        _problem(api.delete(f"{base}/{fingerprint}"), 404, "No inbound certificate")
        uploaded = as_json.json()["fingerprint"]
        assert api.delete(f"/api/v1/inbound-certificates/{uploaded[:12]}").status_code == 204
        assert api.get(base).json() == {"certificates": []}
        _problem(api.get("/api/v1/clients/nobody/certificates"), 404, "nobody")

        target = _target(server)
        _problem(
            api.post(f"/api/v1/systems/{target}/inbound-certificates", content=pem(cert)),
            400,
            "target system",
        )
