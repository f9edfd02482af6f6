"""The console's notifications page: subscribing by e-mail and webhook (the secret shown
once), a problem shown on the form, removing, and what a viewer sees."""

from __future__ import annotations

from provisor.admins.model import Role
from provisor.context import Context
from provisor.systems.model import NewSystem
from tests.console.conftest import Console, csrf_of


def test_subscribing_on_the_notifications_page(console: Console) -> None:
    console.services.systems.create(
        Context.administrator("test"),
        NewSystem.model_validate(
            {"name": "HR", "type": "local-identity-directory", "role": "source"}
        ),
    )
    browser = console.signed_in("ada")
    page = browser.get("/console/notifications")
    assert page.status_code == 200 and "Nobody is subscribed yet." in page.text
    token = csrf_of(page)
    hr = console.services.systems.get(Context.administrator("test"), "HR")
    made = browser.post(
        "/console/notifications",
        data={
            "csrf": token,
            "topic": "job",
            "system": hr.id,
            "channel": "email",
            "name": "Ops Team",
            "address": "ops@example.org",
        },
    )
    assert made.status_code == 303, made.text
    shown = browser.get("/console/notifications").text
    assert "ops@example.org" in shown and "Ops Team subscribed to job." in shown
    system_page = browser.get(f"/console/systems/{hr.id}").text
    assert 'id="system-subscribe-form"' in system_page and "ops@example.org" in system_page

    wrong = browser.post(
        "/console/notifications",
        data={"csrf": token, "topic": "login", "channel": "email", "address": "nobody"},
    )
    assert wrong.status_code == 400 and "not an e-mail address" in wrong.text
    hook = browser.post(
        "/console/notifications",
        data={
            "csrf": token,
            "topic": "certificate",
            "channel": "webhook",
            "address": "https://alerts.example.org/provisor",
        },
    )
    assert hook.status_code == 200 and 'id="webhook-secret"' in hook.text
    assert 'id="webhook-secret"' not in browser.get("/console/notifications").text

    subscriptions = console.services.notifications.subscriptions(Context.system("test"))
    viewer = console.signed_in("vera", Role.VIEWER)
    seen = viewer.get("/console/notifications").text
    assert "ops@example.org" in seen and 'id="subscribe-form"' not in seen
    gone = browser.post(
        f"/console/notifications/{subscriptions[0].id}/delete", data={"csrf": token}
    )
    assert gone.status_code == 303
    assert "ops@example.org" not in browser.get("/console/notifications").text
