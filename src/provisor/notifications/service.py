"""The NotificationService: subscriptions, the messages of jobs (SAP's rules), certificates
and failed-login bursts into the outbox, and the outbox delivered with retries.

Messages are written to the outbox (``notification_deliveries``) where the event happens,
in its transaction when there is one (a job's change of status), each with a key that makes
it unique (an event told twice, by two processes, is one message). The jobs process's
delivery loop (:meth:`NotificationService.deliver_due`) claims due messages, sends each once
and records the attempt; a failure is tried again after 1 minute, 5, 30 and 2 hours, then
given up (``failed``).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog

from provisor.connectors.base import Role
from provisor.connectors.outbound import OutboundPolicy, unusable_url
from provisor.context import Context, Permission, requires
from provisor.errors import InputError, NotFoundError
from provisor.jobs.model import Job, JobStatus, JobType
from provisor.notifications import messages, rules, store
from provisor.notifications.model import (
    Channel,
    Delivery,
    NewSubscription,
    Status,
    Subscription,
    Topic,
    parse,
)
from provisor.notifications.senders import SendError, SmtpSettings, Webhooks, send_mail
from provisor.storage.database import Database, Transaction
from provisor.systems import store as systems_store
from provisor.systems.secrets import CredentialCipher
from provisor.systems.service import SystemService
from provisor.timestamps import format_datetime, now

log = structlog.get_logger("provisor.notifications")

SECRETS_PURPOSE = "notification webhook secrets"
"""The purpose of the key (derived from the master key) that encrypts
``notification_subscriptions.secret``: one Fernet token per row."""
BACKOFF_SECONDS = (60.0, 300.0, 1800.0, 7200.0)  # before the 2nd, 3rd, 4th and 5th attempt
BURST_WINDOW_SECONDS = 3600.0  # a burst of one address or name is told once in this time
CERTIFICATE_LOOKBACK_DAYS = 7  # certificate events told to subscribers when this recent
MAX_SUBSCRIPTIONS = 200  # per tenant
BATCH = 20  # deliveries one round of the loop sends
CLAIM_SECONDS = 120.0  # a claimed delivery is another loop's again after this long
KEEP_DAYS = 30  # deliveries delivered or given up are forgotten after this long
PURGE_BATCH = 1000  # deliveries forgotten by one round at most
JOB_TYPES = (JobType.READ, JobType.RESYNC)
TEST = "test"


@dataclass(frozen=True, slots=True)
class NotificationOptions:
    """``base_url``: the installation's public URL (links to the console and log exports);
    ``smtp``: the mail server (None: e-mails cannot be sent)."""

    base_url: str | None = None
    smtp: SmtpSettings | None = None
    backoff: tuple[float, ...] = BACKOFF_SECONDS
    burst_window: float = BURST_WINDOW_SECONDS

    @property
    def max_attempts(self) -> int:
        return len(self.backoff) + 1


class NotificationService:
    """Subscriptions and deliveries; implements the job engine's ``JobEvents``."""

    def __init__(
        self,
        db: Database,
        systems: SystemService,
        cipher: CredentialCipher,
        policy: OutboundPolicy,
        options: NotificationOptions,
    ) -> None:
        self.db = db
        self.systems = systems
        self.cipher = cipher
        self.policy = policy
        self.options = options
        self.webhooks = Webhooks(policy)
        self._bursts: dict[tuple[str, str, str], int] = {}
        self._burst_lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self.clock: Callable[[], float] = time.time  # the burst windows' clock

    # -- subscriptions ------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def subscriptions(
        self, ctx: Context, *, topic: str | None = None, system: str | None = None
    ) -> list[Subscription]:
        """The tenant's subscriptions (of ``topic``, of ``system``: id or name)."""
        wanted = _topic(topic)
        system_id = self.systems.get(ctx, system).id if system else None
        with self.db.read(ctx) as tx:
            return store.subscriptions(tx, topic=wanted, system_id=system_id)

    @requires(Permission.VIEW)
    def subscription(self, ctx: Context, subscription_id: str) -> Subscription:
        with self.db.read(ctx) as tx:
            found = store.subscription(tx, subscription_id)
        if found is None:
            raise NotFoundError(f"No subscription {subscription_id!r}.")
        return found

    @requires()
    def subscribe(self, ctx: Context, body: dict[str, Any]) -> tuple[Subscription, str | None]:
        """A new subscription, and a webhook's secret (shown this once: it is stored
        encrypted and never returned again)."""
        wanted = parse(body)
        system_id = self._system_of(ctx, wanted)
        secret: str | None = None
        if wanted.channel is Channel.WEBHOOK:
            self._check_url(wanted.address)
            secret = wanted.secret or secrets.token_urlsafe(32)
        subscription_id = str(uuid.uuid4())
        with self.db.write(ctx) as tx:
            if store.count_subscriptions(tx) >= MAX_SUBSCRIPTIONS:
                raise InputError(
                    f"A tenant has at most {MAX_SUBSCRIPTIONS} subscriptions: remove one first."
                )
            store.insert_subscription(
                tx,
                {
                    "id": subscription_id,
                    "topic": wanted.topic.value,
                    "system_id": system_id,
                    "channel": wanted.channel.value,
                    "name": wanted.name,
                    "address": wanted.address,
                    "secret": self.cipher.encrypt(secret) if secret else None,
                    "created": now(),
                    "created_by": ctx.author[:255],
                },
            )
            tx.audit(
                "notification.subscribe",
                subscription_id,
                {
                    "topic": wanted.topic.value,
                    "systemId": system_id,
                    "channel": wanted.channel.value,
                    "name": wanted.name,
                    "address": wanted.address,
                },
            )
            created = store.subscription(tx, subscription_id)
        assert created is not None
        return created, (None if wanted.secret else secret)

    def _system_of(self, ctx: Context, wanted: NewSubscription) -> str | None:
        if wanted.system is None:
            return None
        system = self.systems.get(ctx, wanted.system)
        if wanted.topic is Topic.JOB and system.role is not Role.SOURCE:
            raise InputError(f"{system.name} is a {system.role} system: jobs run on sources.")
        return system.id

    def _check_url(self, url: str) -> None:
        if not url.lower().startswith(("https://", "http://")):
            raise InputError("A webhook's address is an https:// (or http://) URL.")
        problem = unusable_url(url) or self.policy.url_problem(url)
        if problem:
            raise InputError(f"The outbound policy refuses the webhook URL: {problem}.")

    @requires()
    def unsubscribe(self, ctx: Context, subscription_id: str) -> None:
        """Remove a subscription with its deliveries."""
        with self.db.write(ctx) as tx:
            if not store.delete_subscription(tx, subscription_id):
                raise NotFoundError(f"No subscription {subscription_id!r}.")
            tx.audit("notification.unsubscribe", subscription_id)

    # -- deliveries ---------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def deliveries(
        self,
        ctx: Context,
        *,
        status: str | None = None,
        subscription: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Delivery], int]:
        """Messages, newest first, with their attempts; and how many there are."""
        try:
            wanted = Status(status) if status else None
        except ValueError:
            raise InputError("status is pending, delivered or failed.") from None
        if offset < 0 or not 1 <= limit <= 200:
            raise InputError("limit is 1 to 200, offset 0 or more.")
        with self.db.read(ctx) as tx:
            return store.deliveries(
                tx, status=wanted, subscription_id=subscription, offset=offset, limit=limit
            )

    @requires()
    async def test(self, ctx: Context, subscription_id: str) -> Delivery:
        """Send a test message to a subscriber now (once, not retried); the delivery."""
        found = await asyncio.to_thread(self.subscription, ctx, subscription_id)
        key = f"{TEST}:{uuid.uuid4()}"
        subject = f"provisor test message to {found.name}"
        payload = {"message": "This is a test of a provisor notification subscription."}

        def enqueue() -> int:
            with self.db.write(ctx) as tx:
                store.enqueue(
                    tx,
                    key=key,
                    subscription_id=found.id,
                    event=TEST,
                    subject=subject,
                    payload=orjson.dumps(payload).decode(),
                    created=now(),
                )
                return store.delivery_id(tx, key)

        delivery_id = await asyncio.to_thread(enqueue)
        await self._attempt(ctx, delivery_id, datetime.now().astimezone())
        with self.db.read(ctx) as tx:
            return store.deliveries(tx, ids=[delivery_id], limit=1)[0][0]

    # -- job events (the job engine's JobEvents port) -----------------------------------------

    def job_changed(self, tx: Transaction, job: Job, before: JobStatus) -> None:
        """SAP's job notifications (spec §3.10) for READ and RESYNC jobs, in the transaction
        that records the job's new status."""
        if job.type not in JOB_TYPES:
            return
        if job.status not in (
            JobStatus.RUNNING_WITH_ERROR,
            JobStatus.FINISHED_WITH_ERROR,
            JobStatus.SUCCESS,
        ):
            return
        properties = {
            p.key: p.value
            for p in systems_store.properties_of(tx, [job.source_id])[job.source_id]
            if not p.credential
        }
        current = store.streak(tx, job.source_id)
        event, after = rules.decide(rules.JobRules.of(properties), current, job.status)
        if after != current:
            store.save_streak(tx, job.source_id, after)
        if event is None:
            return
        subject = rules.SUBJECTS[event].format(name=job.source_name)
        payload = orjson.dumps(messages.job_payload(job, self.options.base_url)).decode()
        for subscriber in store.subscribers(tx, Topic.JOB, job.source_id):
            store.enqueue(
                tx,
                key=f"{event}:{job.id}:{subscriber.id}",
                subscription_id=subscriber.id,
                event=event,
                subject=subject,
                payload=payload,
                created=now(),
            )

    # -- certificate notices ------------------------------------------------------------------

    def collect_certificates(self, ctx: Context, moment: datetime | None = None) -> int:
        """Certificate notices and renewals recorded recently (``certificate_events``) into
        the outbox of each subscriber to them (once each; those recorded before a
        subscription are not its). ``ctx``: a tenant's or every tenant's (``ANY_TENANT``)."""
        moment = moment or datetime.now().astimezone()
        since = format_datetime(moment - timedelta(days=CERTIFICATE_LOOKBACK_DAYS))
        stamp = format_datetime(moment)
        with self.db.read(ctx) as tx:
            subscribed = store.certificate_subscriptions(tx)
            events = store.certificate_events(tx, since) if subscribed else []
        pending: dict[str, list[tuple[Any, Any]]] = {}
        for event in events:
            for sub in subscribed:
                if sub.tenant != event.tenant or event.created < sub.created:
                    continue
                if sub.system_id is None or sub.system_id == event.system_id:
                    pending.setdefault(event.tenant, []).append((event, sub))
        added = 0
        for tenant, pairs in pending.items():
            with self.db.write(ctx.in_tenant(tenant)) as tx:
                for event, sub in pairs:
                    payload = {
                        "systemId": event.system_id,
                        "systemName": event.system_name,
                        "fingerprint": event.fingerprint,
                        "kind": event.kind,
                        "detail": event.detail,
                        "recorded": event.created,
                    }
                    added += store.enqueue(
                        tx,
                        key=f"certificate:{event.id}:{sub.id}",
                        subscription_id=sub.id,
                        event=f"certificate.{event.kind}",
                        subject=event.subject,
                        payload=orjson.dumps(payload).decode(),
                        created=stamp,
                    )
        return added

    # -- failed-login bursts ------------------------------------------------------------------

    def burst(self, tenant: str, kind: str, who: str) -> None:
        """An address (``kind`` address) spent its failed-authentication budget, or a name
        (``kind`` name) reached the sign-in backoff: the tenant's login subscribers are told,
        at most once a window per address or name (in this process, and across processes by
        the outbox's key). Returns at once: the outbox is written by a thread of its own."""
        window = int(self.clock() // self.options.burst_window)
        key = (tenant, kind, who)
        with self._burst_lock:
            if self._bursts.get(key) == window:
                return
            self._bursts[key] = window
            if len(self._bursts) > 10_000:
                self._bursts.pop(next(iter(self._bursts)))
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="notifications")
            writer = self._writer
        writer.submit(self._record_burst, tenant, kind, who, window)

    def _record_burst(self, tenant: str, kind: str, who: str, window: int) -> int:
        ctx = Context.system("notifications", tenant=tenant)
        digest = hashlib.sha256(f"{kind}\0{who}".encode()).hexdigest()[:32]
        at = now()
        payload = orjson.dumps({"tenant": tenant, "kind": kind, "who": who, "at": at}).decode()
        try:
            with self.db.write(ctx) as tx:
                added = 0
                for sub in store.subscribers(tx, Topic.LOGIN):
                    added += store.enqueue(
                        tx,
                        key=f"login:{digest}:{window}:{sub.id}",
                        subscription_id=sub.id,
                        event="login.burst",
                        subject=f"Failed sign-ins: {who[:100]} is throttled. Tenant: {tenant}",
                        payload=payload,
                        created=at,
                    )
                return added
        except Exception:
            log.exception("a failed-login burst could not be recorded", tenant=tenant)
            return 0

    def close(self) -> None:
        with self._burst_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)

    # -- delivery -----------------------------------------------------------------------------

    async def deliver_due(self, ctx: Context, moment: datetime | None = None) -> int:
        """One round of the delivery loop (``ctx``: every tenant's, or one tenant's): recent
        certificate events into the outbox, then the messages due at ``moment`` (default:
        now) claimed and sent, each attempt recorded. How many were attempted."""
        moment = moment or datetime.now().astimezone()
        await asyncio.to_thread(self.collect_certificates, ctx, moment)
        claimed = await asyncio.to_thread(self._claim_due, ctx, moment)
        for delivery_id, tenant in claimed:
            await self._attempt(ctx.in_tenant(tenant), delivery_id, moment)
        return len(claimed)

    def _claim_due(self, ctx: Context, moment: datetime) -> list[tuple[int, str]]:
        stamp = format_datetime(moment)
        until = format_datetime(moment + timedelta(seconds=CLAIM_SECONDS))
        with self.db.write(ctx) as tx:
            store.purge(tx, format_datetime(moment - timedelta(days=KEEP_DAYS)), PURGE_BATCH)
            return [
                (row.id, row.tenant)
                for row in store.due(tx, stamp, BATCH)
                if store.claim(tx, row.id, row.claimed_until, until)
            ]

    async def _attempt(self, ctx: Context, delivery_id: int, moment: datetime) -> None:
        def load() -> tuple[Any, Any]:
            with self.db.read(ctx) as tx:
                row = store.delivery_row(tx, delivery_id)
                sub = store.subscription_row(tx, row.subscription_id) if row else None
                return row, sub

        row, sub = await asyncio.to_thread(load)
        if row is None or sub is None:
            return  # unsubscribed meanwhile: gone with its subscription
        error: str | None = None
        try:
            await self._send(ctx, row, sub)
        except SendError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not stop the loop: recorded, retried
            log.exception("a notification could not be sent", delivery=delivery_id)
            error = f"unexpected {type(exc).__name__}"
        attempts = row.attempts + 1
        most = 1 if row.event == TEST else self.options.max_attempts
        if error is None:
            status, later = Status.DELIVERED, None
        elif attempts >= most:
            status, later = Status.FAILED, None
        else:
            wait = self.options.backoff[min(attempts, len(self.options.backoff)) - 1]
            status, later = Status.PENDING, format_datetime(moment + timedelta(seconds=wait))

        def record() -> None:
            with self.db.write(ctx) as tx:
                store.record_attempt(
                    tx,
                    delivery_id,
                    at=format_datetime(moment),
                    channel=sub.channel,
                    error=error,
                    status=status,
                    attempts=attempts,
                    next_attempt=later,
                )

        await asyncio.to_thread(record)
        if error is not None:
            log.warning(
                "notification not delivered",
                delivery=delivery_id,
                channel=sub.channel,
                attempts=attempts,
                status=status.value,
                error=error,
            )

    async def _send(self, ctx: Context, row: Any, sub: Any) -> None:
        payload = orjson.loads(row.payload)
        if sub.channel == Channel.EMAIL.value:
            text = messages.text_body(row.event, row.subject, payload)
            await send_mail(self.options.smtp, sub.name, sub.address, row.subject, text)
            return
        body = orjson.dumps(
            {
                "id": row.id,
                "event": row.event,
                "tenant": ctx.tenant,
                "subject": row.subject,
                "created": row.created,
                "data": payload,
            }
        )
        secret = self.cipher.decrypt(sub.secret) if sub.secret else ""
        await self.webhooks.post(
            sub.address,
            secret,
            body,
            event=row.event,
            delivery=str(row.id),
            timestamp=str(int(time.time())),
        )


def _topic(value: str | None) -> Topic | None:
    try:
        return Topic(value) if value else None
    except ValueError:
        raise InputError("topic is job, certificate or login.") from None
