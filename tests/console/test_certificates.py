"""The console's certificates pages: the overview (tenant CA, outbound by system, inbound,
paged) and a system's certificates (generate, activate, download, delete, automatic
regeneration; inbound upload, a generated .p12 shown once, delete), viewers refused."""

from __future__ import annotations

import base64
import re

from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from provisor.admins.model import Role as AdminRole
from provisor.connectors.base import Role
from provisor.context import Context
from provisor.systems.model import NewSystem, System
from tests.certs.conftest import self_signed
from tests.console.conftest import Console, csrf_of

ADMIN = Context.administrator("test")
QUICK = "EC-P256"


def make(console: Console, name: str, role: Role = Role.SOURCE) -> System:
    kind = "local-identity-directory"
    return console.services.systems.create(ADMIN, NewSystem(name=name, type=kind, role=role))


def test_outbound_certificates_are_generated_activated_downloaded_and_deleted(
    console: Console,
) -> None:
    system = make(console, "HR")
    browser = console.signed_in("ada")
    here = f"/console/systems/{system.id}/certificates"
    page = browser.get(here)
    assert page.status_code == 200
    assert "No outbound certificate yet." in page.text
    token = csrf_of(page)
    first = browser.post(f"{here}/outbound", data={"csrf": token, "key_type": QUICK})
    assert first.status_code == 303, first.text
    second = browser.post(
        f"{here}/outbound", data={"csrf": token, "key_type": QUICK, "validity_days": "20"}
    )
    assert second.status_code == 303
    certs = console.services.certificates.outbound(ADMIN, system.id)
    active, inactive = certs
    assert active.active and not inactive.active
    page = browser.get(here)
    assert "generated (inactive)." in page.text
    assert "Both slots are taken" in page.text
    assert "badge-expiring" in page.text and "20 days left" in page.text
    third = browser.post(f"{here}/outbound", data={"csrf": token, "key_type": QUICK})
    assert third.status_code == 409
    assert "delete the inactive one first" in third.text
    pem = browser.get(f"{here}/outbound/{active.details.fingerprint}/download")
    assert pem.status_code == 200 and pem.text.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in pem.text
    chain = browser.get(f"{here}/outbound/{active.details.fingerprint}/download?chain=true")
    assert chain.text.count("BEGIN CERTIFICATE") == 2
    refused = browser.post(
        f"{here}/outbound/{active.details.fingerprint}/delete", data={"csrf": token}
    )
    assert refused.status_code == 409 and "activate the other one first" in refused.text
    activated = browser.post(
        f"{here}/outbound/{inactive.details.fingerprint}/activate", data={"csrf": token}
    )
    assert activated.status_code == 303
    deleted = browser.post(
        f"{here}/outbound/{active.details.fingerprint}/delete", data={"csrf": token}
    )
    assert deleted.status_code == 303
    left = console.services.certificates.outbound(ADMIN, system.id)
    assert [c.details.fingerprint for c in left] == [inactive.details.fingerprint]
    assert left[0].active
    bad = browser.post(f"{here}/outbound", data={"csrf": token, "validity_days": "99999"})
    assert bad.status_code == 400 and "Validity must be" in bad.text
    worse = browser.post(f"{here}/outbound", data={"csrf": token, "key_type": "DSA-1"})
    assert worse.status_code == 400


def test_automatic_regeneration_switches(console: Console) -> None:
    system = make(console, "HR")
    browser = console.signed_in("ada")
    here = f"/console/systems/{system.id}/certificates"
    token = csrf_of(browser.get(here))
    on = browser.post(f"{here}/auto-regeneration", data={"csrf": token, "enabled": "true"})
    assert on.status_code == 303
    assert console.services.certificates.auto_regenerate(ADMIN, system.id)
    assert "Turn off" in browser.get(here).text
    browser.post(f"{here}/auto-regeneration", data={"csrf": token, "enabled": "false"})
    assert not console.services.certificates.auto_regenerate(ADMIN, system.id)


def test_inbound_certificates_are_uploaded_and_deleted(console: Console) -> None:
    system = make(console, "HR")
    browser = console.signed_in("ada")
    here = f"/console/systems/{system.id}/certificates"
    token = csrf_of(browser.get(here))
    cert, _key = self_signed("caller <one>")
    der = cert.public_bytes(Encoding.DER)
    uploaded = browser.post(
        f"{here}/inbound", data={"csrf": token}, files={"file": ("caller.der", der)}
    )
    assert uploaded.status_code == 303, uploaded.text
    pasted_cert, _ = self_signed("caller two")
    pasted = browser.post(
        f"{here}/inbound",
        data={"csrf": token, "text": pasted_cert.public_bytes(Encoding.PEM).decode()},
    )
    assert pasted.status_code == 303
    page = browser.get(here)
    assert "CN=caller \\&lt;one\\&gt;" in page.text or "caller &lt;one&gt;" in page.text
    assert "caller two" in page.text
    again = browser.post(
        f"{here}/inbound", data={"csrf": token}, files={"file": ("caller.der", der)}
    )
    assert again.status_code == 409 and "already attached" in again.text
    empty = browser.post(f"{here}/inbound", data={"csrf": token})
    assert empty.status_code == 400 and "Choose a certificate file" in empty.text
    junk = browser.post(f"{here}/inbound", data={"csrf": token, "text": "not a certificate"})
    assert junk.status_code == 400
    found = console.services.certificates.inbound(ADMIN, system=system.id)
    assert len(found) == 2
    fingerprint = found[0].details.fingerprint
    deleted = browser.post(f"{here}/inbound/{fingerprint}/delete", data={"csrf": token})
    assert deleted.status_code == 303
    assert len(console.services.certificates.inbound(ADMIN, system=system.id)) == 1


def test_a_generated_p12_and_its_password_are_shown_once(console: Console) -> None:
    proxy = make(console, "Proxy", Role.PROXY)
    browser = console.signed_in("ada")
    here = f"/console/systems/{proxy.id}/certificates"
    token = csrf_of(browser.get(here))
    made = browser.post(
        f"{here}/inbound/generate",
        data={"csrf": token, "common_name": "idm", "key_type": QUICK},
    )
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    password = re.search(r'id="p12-password" type="text" value="([^"]+)"', made.text)
    bundle = re.search(r'href="data:application/x-pkcs12;base64,([^"]+)"', made.text)
    assert password and bundle
    key, cert, _chain = pkcs12.load_key_and_certificates(
        base64.b64decode(bundle.group(1)), password.group(1).encode()
    )
    assert key is not None and cert is not None
    assert f"idm ({proxy.id})" in cert.subject.rfc4514_string()
    stored = console.services.certificates.inbound(ADMIN, system=proxy.id)
    assert [c.generated for c in stored] == [True]
    later = browser.get(here)
    assert password.group(1) not in later.text
    long = browser.post(f"{here}/inbound/generate", data={"csrf": token, "common_name": "x" * 60})
    assert long.status_code == 400 and "more than 64" in long.text


def test_a_target_has_no_inbound_certificates(console: Console) -> None:
    target = make(console, "Cloud", Role.TARGET)
    browser = console.signed_in("ada")
    here = f"/console/systems/{target.id}/certificates"
    page = browser.get(here)
    assert "a target has none" in page.text
    cert, _ = self_signed()
    refused = browser.post(
        f"{here}/inbound",
        data={"csrf": csrf_of(page), "text": cert.public_bytes(Encoding.PEM).decode()},
    )
    assert refused.status_code == 400 and "inbound certificates are for source" in refused.text


def test_the_overview_pages_systems_and_inbound_certificates(console: Console) -> None:
    systems = [make(console, f"S{n:02}") for n in range(12)]
    certs = console.services.certificates
    certs.generate_outbound(ADMIN, systems[0].id, key_type=QUICK, validity_days=10)
    for n in range(22):
        cert, _ = self_signed(f"caller {n:02}")
        certs.import_inbound(ADMIN, cert.public_bytes(Encoding.PEM), system=systems[1].id)
    browser = console.signed_in("ada")
    page = browser.get("/console/certificates")
    assert page.status_code == 200
    assert "1\u201310 of 12" in page.text  # systems
    assert "1\u201320 of 22" in page.text  # inbound
    assert "10 days left" in page.text and "badge-expiring" in page.text
    assert "No outbound certificate" in page.text
    assert page.text.count("caller ") == 40  # 20 rows: subject and issuer (self-signed)
    more = browser.get("/console/certificates?inbound=20&offset=10")
    assert "21\u201322 of 22" in more.text and "11\u201312 of 12" in more.text
    ca = browser.get("/console/certificates/ca")
    assert ca.status_code == 200 and "BEGIN CERTIFICATE" in ca.text
    assert browser.get("/console/certificates?offset=-1").status_code in (400, 422)


def test_a_viewer_sees_certificates_but_changes_none(console: Console) -> None:
    system = make(console, "HR")
    console.services.certificates.generate_outbound(ADMIN, system.id, key_type=QUICK)
    browser = console.signed_in("vera", AdminRole.VIEWER)
    here = f"/console/systems/{system.id}/certificates"
    page = browser.get(here)
    assert page.status_code == 200
    assert "generate-outbound" not in page.text and "upload-certificate" not in page.text
    assert browser.get("/console/certificates").status_code == 200
    token = csrf_of(page)
    for path, data in (
        ("outbound", {}),
        ("auto-regeneration", {"enabled": "true"}),
        ("inbound/generate", {"common_name": "x"}),
    ):
        refused = browser.post(f"{here}/{path}", data={"csrf": token, **data})
        assert refused.status_code == 403, path
    assert len(console.services.certificates.outbound(ADMIN, system.id)) == 1
    assert not console.services.certificates.auto_regenerate(ADMIN, system.id)
    assert console.services.certificates.inbound(ADMIN) == []
