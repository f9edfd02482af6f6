"""The admin API's (and the CLI's --json) JSON of subscriptions and deliveries."""

from __future__ import annotations

from typing import Any

from provisor.notifications.model import Delivery, Subscription


def subscription(found: Subscription, secret: str | None = None) -> dict[str, Any]:
    """A subscription; ``secret``: a webhook's, when just made up (shown once)."""
    data: dict[str, Any] = {
        "id": found.id,
        "topic": found.topic.value,
        "systemId": found.system_id,
        "systemName": found.system_name,
        "channel": found.channel.value,
        "name": found.name,
        "address": found.address,
        "created": found.created,
        "createdBy": found.created_by,
    }
    if secret is not None:
        data["secret"] = secret
    return data


def subscriptions(found: list[Subscription]) -> dict[str, Any]:
    return {"items": [subscription(s) for s in found], "total": len(found)}


def delivery(found: Delivery) -> dict[str, Any]:
    return {
        "id": found.id,
        "subscriptionId": found.subscription_id,
        "channel": found.channel,
        "recipient": found.recipient,
        "event": found.event,
        "subject": found.subject,
        "status": found.status.value,
        "attempts": found.attempts,
        "nextAttempt": found.next_attempt,
        "created": found.created,
        "delivered": found.delivered,
        "lastError": found.last_error,
        "tried": [
            {"at": a.at, "channel": a.channel, "status": a.status, "error": a.error}
            for a in found.tried
        ],
    }


def deliveries(found: list[Delivery], total: int, *, offset: int, limit: int) -> dict[str, Any]:
    return {
        "items": [delivery(d) for d in found],
        "total": total,
        "offset": offset,
        "limit": limit,
    }
