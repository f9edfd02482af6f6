"""The notification API and CLI against a live server: subscriptions (a webhook's secret
shown once, never again), problems for bad input, a test message to a real receiver, the
deliveries with their attempts."""

from __future__ import annotations

import json

from tests.conftest import CLI
from tests.notifications.conftest import Receiver

API = "/api/v1/notifications"


def test_subscriptions_deliveries_and_a_test_message(cli: CLI, receiver: Receiver) -> None:
    live = cli.server
    with live.client() as http:
        source = http.post(
            "/api/v1/systems",
            json={"name": "HR", "type": "local-identity-directory", "role": "source"},
        )
        assert source.status_code == 201, source.text
        mail = http.post(
            f"{API}/subscriptions",
            json={
                "topic": "job",
                "system": "HR",
                "channel": "email",
                "name": "Ops Team",
                "address": "ops@example.org",
            },
        )
        assert mail.status_code == 201, mail.text
        assert mail.json()["systemId"] == source.json()["id"] and "secret" not in mail.json()
        hook = http.post(
            f"{API}/subscriptions",
            json={"topic": "login", "channel": "webhook", "address": receiver.url},
        )
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]
        shown = http.get(f"{API}/subscriptions/{hook.json()['id']}").json()
        assert "secret" not in shown and secret not in json.dumps(shown)
        listed = http.get(f"{API}/subscriptions", params={"topic": "job"}).json()
        assert [s["address"] for s in listed["items"]] == ["ops@example.org"]

        for body, says in (
            ({"topic": "job", "system": "HR", "channel": "email", "address": "nobody"}, "e-mail"),
            ({"topic": "job", "channel": "email", "address": "a@example.org"}, "source system"),
            ({"topic": "news", "channel": "email", "address": "a@example.org"}, "topic"),
            (
                {"topic": "login", "channel": "webhook", "address": "http://169.254.169.254/x"},
                "outbound policy",
            ),
            ({"topic": "login", "channel": "pigeon", "address": "x"}, "channel"),
            ({"topic": "login", "channel": "email", "address": "a@example.org", "x": 1}, "x"),
        ):
            refused = http.post(f"{API}/subscriptions", json=body)
            assert refused.status_code == 400, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert says in refused.json()["detail"], refused.json()
        missing = http.post(
            f"{API}/subscriptions",
            json={"topic": "job", "system": "Nope", "channel": "email", "address": "a@b.org"},
        )
        assert missing.status_code == 404

        sent = http.post(f"{API}/subscriptions/{hook.json()['id']}/test")
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "delivered" and sent.json()["attempts"] == 1
        assert receiver.json()["event"] == "test"

    # the CLI: a test e-mail fails without a mail server (exit 1), the deliveries say why
    failed = cli.invoke("notifications", "test", mail.json()["id"], check=False)
    assert failed.returncode == 1 and "PROVISOR_SMTP_HOST" in failed.stdout
    table = cli.invoke("notifications", "deliveries").stdout
    assert "delivered" in table and "failed" in table
    found = json.loads(
        cli.invoke("notifications", "deliveries", "--status", "failed", "--json").stdout
    )
    assert [d["recipient"] for d in found["items"]] == ["ops@example.org"]
    assert found["items"][0]["tried"][0]["status"] == "error"
    made = cli.invoke(
        "notifications", "subscribe", "--topic", "certificate", "--webhook", receiver.url
    ).stdout
    assert "Webhook secret (shown once): " in made
    assert "certificate" in cli.invoke("notifications", "subscriptions").stdout
    cli.invoke("notifications", "unsubscribe", hook.json()["id"])
    with live.client() as http:
        assert http.get(f"{API}/subscriptions/{hook.json()['id']}").status_code == 404
        assert http.delete(f"{API}/subscriptions/{hook.json()['id']}").status_code == 404
