"""Notifications in the admin API (``/api/v1/notifications``): subscriptions, deliveries,
test messages."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from provisor.remote.session import Session, path

BASE = "/api/v1/notifications"


class SubscriptionInfo(TypedDict):
    id: str
    topic: str  # job, certificate, login
    systemId: str | None
    systemName: str | None
    channel: str  # email, webhook
    name: str
    address: str
    created: str
    createdBy: str
    secret: NotRequired[str]  # a webhook's, made up at creation: shown once


class SubscriptionList(TypedDict):
    items: list[SubscriptionInfo]
    total: int


class AttemptInfo(TypedDict):
    at: str
    channel: str
    status: str
    error: str | None


class DeliveryInfo(TypedDict):
    id: int
    subscriptionId: str
    channel: str
    recipient: str
    event: str
    subject: str
    status: str  # pending, delivered, failed
    attempts: int
    nextAttempt: str | None
    created: str
    delivered: str | None
    lastError: str | None
    tried: list[AttemptInfo]


class DeliveryList(TypedDict):
    items: list[DeliveryInfo]
    total: int
    offset: int
    limit: int


class Notifications:
    """``remote.notifications``: who is told of what, and what was sent."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def subscriptions(
        self, *, topic: str | None = None, system: str | None = None
    ) -> SubscriptionList:
        params = {k: v for k, v in (("topic", topic), ("system", system)) if v}
        found: SubscriptionList = self._session.json("GET", f"{BASE}/subscriptions", params=params)
        return found

    def subscribe(self, subscription: dict[str, Any]) -> SubscriptionInfo:
        """``{"topic": "job", "system": "HR", "channel": "email", "name": "Ops",
        "address": "ops@example.org"}``."""
        made: SubscriptionInfo = self._session.json(
            "POST", f"{BASE}/subscriptions", json=subscription
        )
        return made

    def unsubscribe(self, subscription_id: str) -> None:
        self._session.call("DELETE", path(f"{BASE}/subscriptions", subscription_id))

    def test(self, subscription_id: str) -> DeliveryInfo:
        sent: DeliveryInfo = self._session.json(
            "POST", path(f"{BASE}/subscriptions", subscription_id, "test")
        )
        return sent

    def deliveries(
        self,
        *,
        status: str | None = None,
        subscription: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> DeliveryList:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if status:
            params["status"] = status
        if subscription:
            params["subscription"] = subscription
        found: DeliveryList = self._session.json("GET", f"{BASE}/deliveries", params=params)
        return found
