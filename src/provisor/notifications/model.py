"""Subscriptions and deliveries as the service returns them, and the input they are made of."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provisor.errors import InputError

MAX_NAME = 255
MAX_EMAIL = 254
MAX_URL = 2048
MIN_SECRET, MAX_SECRET = 16, 256
EMAIL = re.compile(r"[^@\s<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class Topic(StrEnum):
    JOB = "job"  # a source system's READ and RESYNC jobs (spec §3.10)
    CERTIFICATE = "certificate"  # a system's (or every system's) outbound certificates (§8.1)
    LOGIN = "login"  # bursts of failed sign-ins and authentications in the tenant


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class Status(StrEnum):
    PENDING = "pending"  # to be sent (again) at next_attempt
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    id: str
    topic: Topic
    system_id: str | None
    system_name: str | None
    channel: Channel
    name: str
    address: str  # the e-mail address or the webhook URL
    created: str
    created_by: str
    has_secret: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    at: str
    channel: str
    status: str  # delivered | error
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    id: int
    subscription_id: str
    event: str
    subject: str
    status: Status
    attempts: int
    next_attempt: str | None
    created: str
    delivered: str | None
    last_error: str | None
    channel: str = ""
    recipient: str = ""
    tried: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewSubscription:
    """A subscription as asked for (checked by :func:`parse`)."""

    topic: Topic
    system: str | None  # id or name
    channel: Channel
    name: str
    address: str
    secret: str | None


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InputError(f"{key} is required.")
        return None
    if not isinstance(value, str):
        raise InputError(f"{key} is a string.")
    return value.strip()


def _plain(value: str, what: str, most: int) -> str:
    if not value:
        raise InputError(f"{what} is empty.")
    if len(value) > most:
        raise InputError(f"{what} has more than {most} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InputError(f"{what} may hold no control characters.")
    return value


def email_problem(address: str) -> str | None:
    if len(address) > MAX_EMAIL or not EMAIL.fullmatch(address):
        return f"{address[:80]!r} is not an e-mail address (name@example.org)."
    return None


def parse(body: dict[str, Any]) -> NewSubscription:
    """The subscription a request body asks for: ``topic`` (job, certificate, login),
    ``system`` (a source's id or name for jobs; a system or none for certificates),
    ``channel`` (email, webhook), ``name`` (the recipient's display name), ``address`` (an
    e-mail address or an https/http URL), ``secret`` (a webhook's HMAC secret; default: one
    made up and shown once)."""
    known = {"topic", "system", "channel", "name", "address", "secret"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InputError(
            f"Unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}."
        )
    try:
        topic = Topic(_text(body, "topic") or "")
    except ValueError:
        raise InputError("topic is job, certificate or login.") from None
    try:
        channel = Channel(_text(body, "channel") or "")
    except ValueError:
        raise InputError("channel is email or webhook.") from None
    system = _text(body, "system", required=False) or None
    if topic is Topic.JOB and system is None:
        raise InputError("A job subscription names its source system (system).")
    if topic is Topic.LOGIN and system is not None:
        raise InputError("Failed-login subscriptions are the tenant's: name no system.")
    address = _plain(_text(body, "address") or "", "address", MAX_URL)
    name = _plain(_text(body, "name", required=False) or address, "name", MAX_NAME)
    secret = _text(body, "secret", required=False) or None
    if channel is Channel.EMAIL:
        problem = email_problem(address)
        if problem:
            raise InputError(problem)
        if secret is not None:
            raise InputError("An e-mail subscription has no secret.")
    elif secret is not None and not MIN_SECRET <= len(secret) <= MAX_SECRET:
        raise InputError(f"A webhook secret has {MIN_SECRET} to {MAX_SECRET} characters.")
    return NewSubscription(
        topic=topic, system=system, channel=channel, name=name, address=address, secret=secret
    )
