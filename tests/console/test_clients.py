"""The console's technical users: list and search, create (the secret shown once), change,
rotate, certificates (upload, generate, delete), delete; viewers only look."""

from __future__ import annotations

import base64
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from provisor.admins.model import Role
from provisor.context import Context
from tests.certs.conftest import self_signed
from tests.console.conftest import Console, csrf_of

CTX = Context.system("test")


def _secret(page: str) -> str:
    found = re.search(r'id="client-secret" class="secret">([^<]+)<', page)
    assert found, page
    return found.group(1)


def test_create_shows_the_secret_once(console: Console) -> None:
    browser = console.signed_in("ada")
    form = browser.get("/console/clients/new")
    assert form.status_code == 200
    assert 'value="view"' in form.text and 'value="operator"' not in form.text
    made = browser.post(
        "/console/clients/new",
        data={
            "csrf": csrf_of(form),
            "name": "hr-sync",
            "permission": ["manage_users", "view"],
            "description": "the HR feed <b>",
            "expires_in_days": "30",
        },
    )
    assert made.status_code == 200, made.text
    secret = _secret(made.text)
    view = console.services.clients.show(CTX, "hr-sync")
    assert view.client.permissions == ("manage_users", "view")
    assert view.secrets[0].expires is not None
    assert console.services.clients.authenticate_secret("default", view.client.id, secret)
    page = browser.get(f"/console/clients/{view.client.id}")
    assert page.status_code == 200
    assert secret not in page.text
    assert "the HR feed &lt;b&gt;" in page.text
    assert secret not in browser.get("/console/clients").text


def test_bad_input_keeps_what_was_typed(console: Console) -> None:
    browser = console.signed_in("ada")
    token = csrf_of(browser.get("/console/clients/new"))
    empty = browser.post(
        "/console/clients/new", data={"csrf": token, "name": "robot", "description": "kept"}
    )
    assert empty.status_code == 400
    assert "permission" in empty.text.lower()
    assert 'value="robot"' in empty.text and ">kept</textarea>" in empty.text
    days = browser.post(
        "/console/clients/new",
        data={"csrf": token, "name": "robot", "permission": "view", "expires_in_days": "soon"},
    )
    assert days.status_code == 400 and "whole number" in days.text
    assert console.services.clients.page(CTX)[1] == 0


def test_list_is_paged_and_searched(console: Console) -> None:
    for i in range(55):
        console.services.clients.create(CTX, f"robot-{i:02d}", ["view"])
    console.services.clients.create(CTX, "Feeder", ["manage_users"])
    browser = console.signed_in("ada")
    first = browser.get("/console/clients")
    assert first.status_code == 200
    assert first.text.count("/console/clients/") - first.text.count("/console/clients/new") == 50
    assert "1\u201350 of 56" in first.text and 'rel="next"' in first.text
    last = browser.get("/console/clients?offset=50")
    assert "51\u201356 of 56" in last.text and "robot-54" in last.text
    found = browser.get("/console/clients?search=FEED")
    assert "Feeder" in found.text and "robot-01" not in found.text
    assert browser.get("/console/clients?offset=-1").status_code in (400, 422)


def test_change_rotate_and_delete(console: Console) -> None:
    browser = console.signed_in("ada")
    row, creds = console.services.clients.create(CTX, "robot", ["view"])
    page = browser.get(f"/console/clients/{row.id}")
    token = csrf_of(page)
    changed = browser.post(
        f"/console/clients/{row.id}/change",
        data={"csrf": token, "permission": ["manage_groups", "admin"], "description": "new"},
    )
    assert changed.status_code == 303
    after = console.services.clients.show(CTX, row.id).client
    assert set(after.permissions) == {"admin", "manage_groups"}
    assert after.description == "new"
    none = browser.post(f"/console/clients/{row.id}/change", data={"csrf": token})
    assert none.status_code == 400

    kept = browser.post(
        f"/console/clients/{row.id}/rotate", data={"csrf": token, "keep_previous": "1"}
    )
    assert kept.status_code == 200
    second = _secret(kept.text)
    assert console.services.clients.authenticate_secret("default", row.id, creds.client_secret)
    assert console.services.clients.authenticate_secret("default", row.id, second)
    replaced = browser.post(f"/console/clients/{row.id}/rotate", data={"csrf": token})
    third = _secret(replaced.text)
    assert len(console.services.clients.show(CTX, row.id).secrets) == 1
    assert console.services.clients.authenticate_secret("default", row.id, third)

    gone = browser.post(f"/console/clients/{row.id}/delete", data={"csrf": token})
    assert gone.status_code == 303 and gone.headers["location"] == "/console/clients"
    assert browser.get(f"/console/clients/{row.id}").status_code == 404


def test_certificates_upload_generate_delete(console: Console) -> None:
    browser = console.signed_in("ada")
    row, _ = console.services.clients.create(CTX, "robot", ["view"])
    token = csrf_of(browser.get(f"/console/clients/{row.id}"))
    cert, _key = self_signed("uploaded caller")
    der = cert.public_bytes(serialization.Encoding.DER)
    uploaded = browser.post(
        f"/console/clients/{row.id}/certificates",
        data={"csrf": token},
        files={"certificate": ("caller.der", der, "application/octet-stream")},
    )
    assert uploaded.status_code == 303, uploaded.text
    assert "uploaded caller" in browser.get(f"/console/clients/{row.id}").text
    junk = browser.post(
        f"/console/clients/{row.id}/certificates",
        data={"csrf": token},
        files={"certificate": ("x.pem", b"not a certificate", "text/plain")},
    )
    assert junk.status_code == 400 and "Traceback" not in junk.text

    generated = browser.post(
        f"/console/clients/{row.id}/certificates/generate",
        data={"csrf": token, "common_name": "robot cert", "key_type": "EC-P256"},
    )
    assert generated.status_code == 200, generated.text
    password = re.search(r'id="p12-password" class="secret">([^<]+)<', generated.text)
    bundle = re.search(r'href="data:application/x-pkcs12;base64,([^"]+)"', generated.text)
    assert password and bundle
    key, leaf, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(bundle.group(1)), password.group(1).encode()
    )
    assert key is not None and leaf is not None
    certs = console.services.certificates.inbound(CTX, client=row.id)
    assert len(certs) == 2
    page = browser.get(f"/console/clients/{row.id}")
    assert password.group(1) not in page.text

    fingerprint = certs[0].details.fingerprint
    deleted = browser.post(
        f"/console/clients/{row.id}/certificates/{fingerprint}/delete", data={"csrf": token}
    )
    assert deleted.status_code == 303
    assert len(console.services.certificates.inbound(CTX, client=row.id)) == 1


def test_a_viewer_sees_no_actions_and_is_refused(console: Console) -> None:
    row, _ = console.services.clients.create(CTX, "robot", ["view"])
    viewer = console.signed_in("vera", Role.VIEWER)
    listing = viewer.get("/console/clients")
    assert listing.status_code == 200 and "robot" in listing.text
    assert "New technical user" not in listing.text
    page = viewer.get(f"/console/clients/{row.id}")
    assert page.status_code == 200
    assert "Rotate secret" not in page.text and "/delete" not in page.text
    token = csrf_of(page)
    for path in ("/change", "/rotate", "/delete"):
        refused = viewer.post(
            f"/console/clients/{row.id}{path}", data={"csrf": token, "permission": "admin"}
        )
        assert refused.status_code == 403, path
    made = viewer.post(
        "/console/clients/new", data={"csrf": token, "name": "x", "permission": "admin"}
    )
    assert made.status_code == 403
    assert console.services.clients.page(CTX)[1] == 1
    assert len(console.services.clients.show(CTX, row.id).secrets) == 1
