"""Sending one message: e-mail over SMTP (STARTTLS, authentication), or a webhook's signed
JSON POST through the outbound policy."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

import httpx

from provisor.connectors.base import ConnectorError, excerpt
from provisor.connectors.outbound import GuardedTransport, OutboundPolicy

SIGNATURE = "X-Provisor-Signature"
TIMESTAMP = "X-Provisor-Timestamp"
EVENT = "X-Provisor-Event"
DELIVERY = "X-Provisor-Delivery"
TIMEOUT_SECONDS = 15.0
ERROR_CHARACTERS = 500  # of an error kept with an attempt


class SendError(Exception):
    """A message was not delivered; ``str()`` says why (no secret in it)."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the webhook's secret of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The installation's mail server (``PROVISOR_SMTP_*``)."""

    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    sender: str = "provisor@localhost"
    starttls: bool = True
    ca_file: Path | None = None
    timeout: float = TIMEOUT_SECONDS


def _send_mail(smtp: SmtpSettings, message: EmailMessage) -> None:
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        client.ehlo()
        if smtp.starttls:
            client.starttls(context=context)
            client.ehlo()
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


async def send_mail(
    smtp: SmtpSettings | None, name: str, address: str, subject: str, text: str
) -> None:
    """One plain-text e-mail; SendError when there is no mail server or it refuses."""
    if smtp is None:
        raise SendError("No mail server: set PROVISOR_SMTP_HOST (and _FROM, _USERNAME...).")
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = formataddr((name, address))
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    message.set_content(text)
    try:
        await asyncio.to_thread(_send_mail, smtp, message)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise SendError(excerpt(f"{type(exc).__name__}: {exc}", ERROR_CHARACTERS)) from None


class Webhooks:
    """POSTs through the outbound policy, verifying servers' certificates."""

    def __init__(self, policy: OutboundPolicy, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.policy = policy
        self.timeout = timeout
        self._verify: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._verify is None:
            self._verify = httpx.create_ssl_context()
        return self._verify

    async def post(
        self, url: str, secret: str, body: bytes, *, event: str, delivery: str, timestamp: str
    ) -> None:
        """Deliver ``body``: a 2xx answer is delivered, anything else a SendError."""
        transport = GuardedTransport(
            self.policy,
            verify=self._context(),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "provisor-notifications",
            TIMESTAMP: timestamp,
            SIGNATURE: signature(secret, timestamp, body),
            EVENT: event,
            DELIVERY: delivery,
        }
        try:
            async with httpx.AsyncClient(
                transport=transport, timeout=self.timeout, follow_redirects=False
            ) as client:
                answer = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SendError(excerpt(f"{type(exc).__name__}: {exc}", ERROR_CHARACTERS)) from None
        except (ConnectorError, OSError) as exc:  # the outbound policy's refusal among them
            raise SendError(excerpt(str(exc), ERROR_CHARACTERS)) from None
        if not 200 <= answer.status_code < 300:
            raise SendError(excerpt(f"HTTP {answer.status_code}: {answer.text}", ERROR_CHARACTERS))
