"""``provisor notifications``: who is told of jobs, certificates and failed sign-ins, and what
was sent, through the admin API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    Profile,
    Server,
    connect,
    fail,
    print_json,
    print_table,
    say,
)
from provisor.remote.notifications import DeliveryInfo

app = typer.Typer(
    help="Notifications: job, certificate and failed sign-in messages by e-mail or webhook.",
    no_args_is_help=True,
)

IdArg = Annotated[str, typer.Argument(help="The subscription's id.")]


@app.command()
def subscribe(
    topic: Annotated[str, typer.Option(help="job, certificate or login.")],
    system: Annotated[
        str | None,
        typer.Option(
            help="The system (id or name): a job subscription's source; certificates "
            "of one system (default: every system)."
        ),
    ] = None,
    email: Annotated[str | None, typer.Option(help="The recipient's e-mail address.")] = None,
    webhook: Annotated[str | None, typer.Option(help="The webhook's https URL.")] = None,
    name: Annotated[str | None, typer.Option(help="The recipient's display name.")] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="The webhook's HMAC secret (16+ characters); default: made up and shown once."
        ),
    ] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Subscribe an e-mail recipient or a webhook to a topic."""
    if (email is None) == (webhook is None):
        fail("Give --email or --webhook (one of them).")
    body: dict[str, Any] = {
        "topic": topic,
        "channel": "email" if email else "webhook",
        "address": email or webhook,
    }
    for key, value in (("system", system), ("name", name), ("secret", secret)):
        if value is not None:
            body[key] = value
    with connect(server, profile) as remote:
        made = remote.notifications.subscribe(body)
    if as_json:
        print_json(made)
        return
    say(f"Subscribed {made['id']}: {made['name']} <{made['address']}> to {made['topic']}")
    if "secret" in made:
        say(f"Webhook secret (shown once): {made['secret']}")


@app.command()
def unsubscribe(subscription_id: IdArg, server: Server = None, profile: Profile = None) -> None:
    """Remove a subscription (its deliveries go with it)."""
    with connect(server, profile) as remote:
        remote.notifications.unsubscribe(subscription_id)
    say(f"Unsubscribed {subscription_id}")


@app.command()
def subscriptions(
    topic: Annotated[str | None, typer.Option(help="job, certificate or login.")] = None,
    system: Annotated[str | None, typer.Option(help="A system's id or name.")] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """The tenant's subscriptions."""
    with connect(server, profile) as remote:
        found = remote.notifications.subscriptions(topic=topic, system=system)
    if as_json:
        print_json(found)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "topic", "system", "channel", "name", "address"):
        table.add_column(column, no_wrap=True)
    for s in found["items"]:
        table.add_row(
            s["id"], s["topic"], s["systemName"] or "-", s["channel"], s["name"], s["address"]
        )
    print_table(table)


def _delivery_row(d: DeliveryInfo) -> list[str]:
    return [
        str(d["id"]),
        d["status"],
        str(d["attempts"]),
        d["channel"],
        d["recipient"],
        d["subject"],
        d["lastError"] or "-",
    ]


@app.command()
def deliveries(
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
    subscription: Annotated[str | None, typer.Option(help="A subscription's id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="At most this many.")] = 50,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Messages sent and to send, newest first, with their attempts."""
    with connect(server, profile) as remote:
        found = remote.notifications.deliveries(
            status=status, subscription=subscription, limit=limit
        )
    if as_json:
        print_json(found)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "status", "attempts", "channel", "to", "subject", "last error"):
        table.add_column(column, no_wrap=True)
    for d in found["items"]:
        table.add_row(*_delivery_row(d))
    print_table(table)


@app.command()
def test(
    subscription_id: IdArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """Send a test message to a subscriber now; exit 1 when it was not delivered."""
    with connect(server, profile) as remote:
        sent = remote.notifications.test(subscription_id)
    if as_json:
        print_json(sent)
    else:
        say(f"Test message {sent['id']} to {sent['recipient']}: {sent['status']}")
        if sent["lastError"]:
            say(f"  {sent['lastError']}")
    if sent["status"] != "delivered":
        raise typer.Exit(1)
