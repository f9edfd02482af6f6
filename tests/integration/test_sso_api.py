"""The console's single sign-on in the admin API (``/api/v1/console/sso``) and the CLI
(``provisor admins sso``): the client secret is written, never read back; reading needs ``view``,
changing ``admin``; errors are problem JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import CLI, LiveServer

PROBLEM_JSON = "application/problem+json"
SETTINGS = {
    "label": "Corporate IdP",
    "issuer": "https://idp.example.org/realms/staff",
    "clientId": "provisor-console",
    "clientSecret": "the-client-secret",
    "roleClaim": "realm_access.roles",
    "administratorValues": ["provisor-admins", "CN=admins,OU=groups"],
    "viewerValues": ["provisor-viewers"],
}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    return body


def test_set_show_keep_the_secret_and_clear(sqlite_server: LiveServer) -> None:
    with sqlite_server.client(path="/api/v1") as api:
        assert "not configured" in problem(api.get("/console/sso"), 404)["detail"]
        put = api.put("/console/sso", json=SETTINGS)
        assert put.status_code == 200, put.text
        shown = api.get("/console/sso").json()
        assert shown == put.json()
        assert shown["issuer"] == SETTINGS["issuer"] and shown["scopes"] == "openid profile email"
        assert shown["administratorValues"] == SETTINGS["administratorValues"]
        assert "clientSecret" not in shown and "the-client-secret" not in put.text
        # without a secret the stored one is kept
        kept = api.put("/console/sso", json={**SETTINGS, "clientSecret": "", "label": "IdP"})
        assert kept.status_code == 200 and kept.json()["label"] == "IdP"

        refused = problem(api.put("/console/sso", json={**SETTINGS, "issuer": "ftp://x"}), 400)
        assert "not an https URL" in refused["detail"]
        refused = problem(api.put("/console/sso", json={**SETTINGS, "issuer": "http://a.b"}), 400)
        assert "must use https" in refused["detail"]
        no_roles = {**SETTINGS, "administratorValues": [], "viewerValues": []}
        assert (
            "at least one claim value"
            in problem(api.put("/console/sso", json=no_roles), 400)["detail"]
        )
        problem(api.put("/console/sso", json={**SETTINGS, "surprise": 1}), 400)
        problem(api.put("/console/sso", json={**SETTINGS, "label": ""}), 400)

        made = api.post("/clients", json={"name": "watcher", "permissions": ["view"]}).json()
        with httpx.Client(
            base_url=sqlite_server.url + "/api/v1",
            auth=(made["clientId"], made["clientSecret"]),
        ) as viewer:
            assert viewer.get("/console/sso").json()["label"] == "IdP"
            problem(viewer.put("/console/sso", json=SETTINGS), 403)
            problem(viewer.delete("/console/sso"), 403)

        assert api.delete("/console/sso").status_code == 204
        problem(api.delete("/console/sso"), 404)
        problem(api.get("/console/sso"), 404)


def test_the_first_setting_needs_a_secret(sqlite_server: LiveServer) -> None:
    with sqlite_server.client(path="/api/v1") as api:
        body = {k: v for k, v in SETTINGS.items() if k != "clientSecret"}
        assert (
            "client secret is required"
            in problem(api.put("/console/sso", json=body), 400)["detail"]
        )


def test_sso_commands(cli: CLI, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    made = cli.invoke(
        "admins",
        "sso",
        "set",
        "--label",
        "Corporate IdP",
        "--issuer",
        "https://idp.example.org",
        "--client-id",
        "provisor-console",
        "--client-secret-file",
        str(secret),
        "--administrator",
        "provisor-admins",
        "--viewer",
        "provisor-viewers",
        "--viewer",
        "auditors",
    )
    assert "Sign in with Corporate IdP" in made.stdout
    assert "from-a-file" not in made.stdout
    shown = json.loads(cli.invoke("admins", "sso", "show", "--json").stdout)
    assert shown["viewerValues"] == ["provisor-viewers", "auditors"]
    assert shown["roleClaim"] == "groups" and "clientSecret" not in shown
    # again without a secret: the stored one is kept
    cli.invoke(
        "admins", "sso", "set", "--label", "IdP", "--issuer", "https://idp.example.org",
        "--client-id", "provisor-console", "--administrator", "provisor-admins",
    )  # fmt: skip
    assert "IdP" in cli.invoke("admins", "sso", "show").stdout

    refused = cli.invoke(
        "admins", "sso", "set", "--label", "IdP", "--issuer", "http://idp.example.org",
        "--client-id", "c", "--administrator", "a", check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "must use https" in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr

    assert "removed" in cli.invoke("admins", "sso", "clear", "--yes").stdout
    gone = cli.invoke("admins", "sso", "show", check=False)
    assert gone.returncode == 1 and "not configured" in gone.stderr
