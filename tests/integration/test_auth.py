"""Technical users over HTTP: Basic, OAuth 2.0 client credentials, permissions, limits."""

from __future__ import annotations

import time

import httpx
import jwt

from provisor.context import Context
from tests.conftest import LiveServer
from tests.helpers import create, group_body, scim_error, user_body

CTX = Context.system("tests")  # the service calls a test makes directly


def token(server: LiveServer, creds: tuple[str, str], **form: str) -> httpx.Response:
    with httpx.Client(base_url=server.url) as client:
        return client.post(
            "/oauth2/token", data={"grant_type": "client_credentials", **form}, auth=creds
        )


def test_every_scim_endpoint_needs_credentials(sqlite_server: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_server.url) as anonymous:
        for method, path in [
            ("GET", "/scim/Users"),
            ("POST", "/scim/Users"),
            ("GET", "/scim/Groups/x"),
            ("GET", "/scim/Schemas"),
            ("GET", "/scim/ServiceProviderConfig"),
            ("POST", "/scim/Bulk"),
            ("GET", "/scim/ResourceTypes"),
        ]:
            response = anonymous.request(method, path)
            scim_error(response, 401)
            assert "Basic" in response.headers["www-authenticate"]
        bad_secret = anonymous.get("/scim/Users", auth=(sqlite_server.admin[0], "wrong"))
        scim_error(bad_secret, 401)
        garbage = anonymous.get("/scim/Users", headers={"Authorization": "Basic !!!"})
        scim_error(garbage, 401)
        scheme = anonymous.get("/scim/Users", headers={"Authorization": "Digest x"})
        scim_error(scheme, 401)
        assert anonymous.get("/health").status_code == 200  # probes need no credentials


def test_permissions_per_resource_type(sqlite_server: LiveServer) -> None:
    users_only = sqlite_server.new_client("manage_users")
    with sqlite_server.client(auth=users_only) as client:
        create(client, "/scim/Users", user_body())
        scim_error(client.post("/scim/Groups", json=group_body()), 403)
        scim_error(client.get("/scim/Groups"), 403)
    proxy_only = sqlite_server.new_client("proxy_api")
    with sqlite_server.client(auth=proxy_only) as client:
        scim_error(client.get("/scim/Users"), 403)
        scim_error(client.get("/scim/Schemas"), 403)


def test_client_credentials_grant_and_bearer_use(sqlite_server: LiveServer) -> None:
    creds = sqlite_server.new_client("manage_users", "manage_groups")
    response = token(sqlite_server, creds)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "manage_groups manage_users"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == creds[0] and claims["exp"] - claims["iat"] == 3600
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    with httpx.Client(base_url=sqlite_server.url, headers=bearer) as client:
        create(client, "/scim/Groups", group_body())
    narrow = token(sqlite_server, creds, scope="manage_users").json()
    with httpx.Client(
        base_url=sqlite_server.url, headers={"Authorization": f"Bearer {narrow['access_token']}"}
    ) as client:
        assert client.get("/scim/Users").status_code == 200
        scim_error(client.get("/scim/Groups"), 403)


def test_client_secret_in_the_form_body(sqlite_server: LiveServer) -> None:
    client_id, secret = sqlite_server.new_client("manage_users")
    with httpx.Client(base_url=sqlite_server.url) as client:
        response = client.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
    assert response.status_code == 200


def test_oauth_errors_follow_rfc_6749(sqlite_server: LiveServer) -> None:
    creds = sqlite_server.new_client("manage_users")
    with httpx.Client(base_url=sqlite_server.url) as client:
        wrong = client.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(creds[0], "nope")
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        assert wrong.headers["www-authenticate"].startswith("Basic")
        anonymous = client.post("/oauth2/token", data={"grant_type": "client_credentials"})
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
        grant = client.post("/oauth2/token", data={"grant_type": "password"}, auth=creds)
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
        missing = client.post("/oauth2/token", data={}, auth=creds)
        assert missing.json()["error"] == "invalid_request"
        both = client.post(
            "/oauth2/token",
            auth=creds,
            data={
                "grant_type": "client_credentials",
                "client_id": creds[0],
                "client_secret": creds[1],
            },
        )
        assert both.json()["error"] == "invalid_request"
        repeated = client.post(
            "/oauth2/token",
            auth=creds,
            content=b"grant_type=client_credentials&grant_type=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert repeated.json()["error"] == "invalid_request"
    scope = token(sqlite_server, creds, scope="admin")
    assert scope.status_code == 400 and scope.json()["error"] == "invalid_scope"


def test_bad_bearer_tokens(sqlite_server: LiveServer) -> None:
    creds = sqlite_server.new_client("manage_users")
    good = token(sqlite_server, creds).json()["access_token"]
    forged = jwt.encode(
        {
            "sub": creds[0],
            "exp": int(time.time()) + 60,
            "iat": 0,
            "aud": "provisor",
            "iss": "provisor",
            "scope": "admin",
        },
        "not-the-key-but-long-enough-for-hmac-sha256",
        algorithm="HS256",
    )
    expired = jwt.encode({"sub": creds[0], "exp": 1, "iat": 0}, "k" * 32, algorithm="HS256")
    with httpx.Client(base_url=sqlite_server.url) as client:
        for value in [forged, expired, good[:-3] + "abc", "x"]:
            response = client.get("/scim/Users", headers={"Authorization": f"Bearer {value}"})
            scim_error(response, 401)


def test_deleting_or_rotating_revokes(sqlite_server: LiveServer) -> None:
    clients = sqlite_server.services.clients
    row, creds = clients.create(CTX, "rotating", ["manage_users"])
    bearer = token(sqlite_server, (creds.client_id, creds.client_secret)).json()["access_token"]
    _, new = clients.rotate_secret(CTX, "rotating")
    with httpx.Client(base_url=sqlite_server.url) as client:
        time.sleep(2.1)  # past the server's 2-second client cache
        scim_error(client.get("/scim/Users", auth=(creds.client_id, creds.client_secret)), 401)
        assert client.get("/scim/Users", auth=(new.client_id, new.client_secret)).status_code == 200
        clients.delete(CTX, row.id)
        time.sleep(2.1)
        scim_error(client.get("/scim/Users", auth=(new.client_id, new.client_secret)), 401)
        scim_error(client.get("/scim/Users", headers={"Authorization": f"Bearer {bearer}"}), 401)


def test_oversized_bodies_are_refused_with_413(sqlite_server: LiveServer) -> None:
    limit = sqlite_server.settings.max_body_bytes
    payload = b'{"userName": "' + b"x" * limit + b'"}'
    with sqlite_server.client() as client:
        scim_error(
            client.post(
                "/scim/Users", content=payload, headers={"content-type": "application/scim+json"}
            ),
            413,
            "tooLarge",
        )

        def chunks():  # no Content-Length: the limit applies to what arrives
            for _ in range(limit // 65536 + 2):
                yield b"x" * 65536

        streamed = client.post("/scim/Users", content=chunks())
        scim_error(streamed, 413, "tooLarge")
        assert client.get("/scim/Users").status_code == 200  # the server is fine


def test_non_scim_errors_are_problem_json(sqlite_server: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_server.url) as client:
        response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_openapi_document_lists_the_apis(sqlite_server: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_server.url) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/scim/Users",
        "/scim/Users/{resource_id}",
        "/scim/Groups",
        "/scim/Bulk",
        "/oauth2/token",
        "/health",
    } <= set(paths)
