"""Notifications through the service, on a real database, a real SMTP server (STARTTLS, AUTH)
and a real webhook receiver: SAP's job rules, a real failing job, webhooks signed and retried
with backoff, certificate notices, failed-login bursts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from email.message import Message

from provisor.auth.attempts import AttemptLimiter
from provisor.certs import store as certs_store
from provisor.context import ANY_TENANT, Context
from provisor.jobs.model import Job, JobStatus, JobType
from provisor.notifications.model import Status
from provisor.notifications.service import NotificationOptions
from provisor.runtime import Services, notification_delivery
from provisor.settings import Settings
from provisor.systems.model import SystemChanges
from provisor.timestamps import format_datetime, now
from tests.conftest import free_port
from tests.jobs.conftest import add_users, lid_source, run_job, system
from tests.notifications.conftest import BASE_URL, Mailbox, Receiver

ADMIN = Context.administrator("test")
WORKER = Context.system("worker")
NOTIFIER = Context.system("notifications", tenant=ANY_TENANT)
R, F, S = JobStatus.RUNNING_WITH_ERROR, JobStatus.FINISHED_WITH_ERROR, JobStatus.SUCCESS
RUNNING = "Provisioning Running with Error. Source System: HR"
FINISHED = "Provisioning Finished with Error. Source System: HR"
SUCCEEDED = "Provisioning Success. Source System: HR"


def journaled(
    services: Services, source: str, statuses: list[JobStatus], type: JobType = JobType.READ
) -> Job:
    """A job that goes through ``statuses`` as a runner reports them (its journal)."""
    job = services.jobs.start(ADMIN, source, type=type)
    assert services.jobs.claim(WORKER, "test", job.id) is not None
    journal = services.jobs.journal_of(WORKER)
    for status in statuses:
        ended = {"ended": now()} if status.finished else {}
        journal.commit(job.id, [], {}, status=status, **ended)
    return job


def text(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def deliver(services: Services, moment: datetime | None = None) -> int:
    return asyncio.run(services.notifications.deliver_due(NOTIFIER, moment))


def events(services: Services) -> list[str]:
    found, _ = services.notifications.deliveries(ADMIN, limit=200)
    return [d.event for d in reversed(found)]


def subscribe_mail(services: Services, topic: str, system: str | None = None) -> str:
    body = {"topic": topic, "channel": "email", "name": "Ops Team", "address": "ops@example.org"}
    if system:
        body["system"] = system
    return services.notifications.subscribe(ADMIN, body)[0].id


def test_job_notifications_follow_saps_rules(notifying: Services, mailbox: Mailbox) -> None:
    services = notifying
    ignored = "ips.job.notification.ignored.consecutive.failures"
    lid_source(services, "HR", **{ignored: "2"})
    subscribe_mail(services, "job", "HR")
    journaled(services, "HR", [JobStatus.RUNNING, R, R, F])  # 1st failure: suppressed
    journaled(services, "HR", [R, F])  # 2nd: suppressed
    third = journaled(services, "HR", [R, F])  # 3rd in a row: told
    journaled(services, "HR", [R, F])  # 4th: repeat.on.failure is false
    journaled(services, "HR", [S])  # after a failure that was told
    journaled(services, "HR", [S])  # nothing to tell
    journaled(services, "HR", [R, F], JobType.SIMULATE)  # not a READ or RESYNC
    running, finished, success = "job.running_with_error", "job.finished_with_error", "job.success"
    assert events(services) == [running, running, running, finished, running, success]
    found, _ = services.notifications.deliveries(ADMIN, limit=200)
    told = next(d for d in found if d.event == finished)
    assert told.subject == FINISHED and told.status is Status.PENDING

    services.systems.update(
        ADMIN,
        "HR",
        SystemChanges(
            properties={
                "ips.job.notification.skip.intermediate.notifications": "true",
                "ips.job.notification.repeat.on.failure": "true",
            }
        ),
    )
    journaled(services, "HR", [R, F])
    journaled(services, "HR", [R, F])
    assert events(services)[6:] == [finished, finished]  # every failure, no "running" mail

    assert deliver(services) == 8
    assert sorted(mailbox.subjects()) == sorted([RUNNING] * 4 + [FINISHED] * 3 + [SUCCEEDED])
    assert all(tls and authenticated for _m, tls, authenticated in mailbox.messages)
    body = text(next(m for m, _t, _a in mailbox.messages if m["Subject"] == FINISHED))
    assert f"Navigate to details: {BASE_URL}/console/jobs/{third.id}" in body
    assert all(d.status is Status.DELIVERED for d in services.notifications.deliveries(ADMIN)[0])
    assert deliver(services) == 0  # each message once


def test_a_real_job_that_fails_then_succeeds(sqlite_notifying: Services, mailbox: Mailbox) -> None:
    services = sqlite_notifying
    add_users(services, "ann", "bob")
    source = lid_source(services, "HR")
    subscribe_mail(services, "job", "HR")
    system(
        services,
        name="Remote",
        type="scim",
        role="target",
        sourceSystemIds=[source.id],
        properties={
            "URL": f"http://127.0.0.1:{free_port()}/scim",  # nobody listens
            "Authentication": "BasicAuthentication",
            "User": "nobody",
            "Password": "nothing",
            "ips.failed.request.retry.attempts": "0",
        },
    )
    failed = run_job(services, "HR")
    assert failed.status is JobStatus.FINISHED_WITH_ERROR
    assert events(services) == ["job.running_with_error", "job.finished_with_error"]
    services.systems.delete(ADMIN, "Remote")
    fine = run_job(services, "HR")
    assert fine.status is JobStatus.SUCCESS
    assert deliver(services) == 3
    assert mailbox.subjects() == [RUNNING, FINISHED, SUCCEEDED]
    body = text(mailbox.messages[1][0])
    assert "Target systems: Remote" in body and "Job type: READ" in body
    assert "Read mode: Full Read" in body and "Status: Finished with Error" in body
    assert f"{BASE_URL}/console/jobs/{failed.id}" in body
    assert f"{BASE_URL}/api/v1/jobs/{failed.id}/logs?logType=failedEntitiesLog" in body


def _signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    mac = hmac.new(
        secret.encode(), headers["x-provisor-timestamp"].encode() + b"." + body, hashlib.sha256
    )
    return hmac.compare_digest(headers["x-provisor-signature"], "sha256=" + mac.hexdigest())


def test_webhooks_are_signed_and_retried_with_backoff(
    sqlite_notifying: Services, receiver: Receiver
) -> None:
    services = sqlite_notifying
    lid_source(services, "HR")
    made, secret = services.notifications.subscribe(
        ADMIN, {"topic": "job", "system": "HR", "channel": "webhook", "address": receiver.url}
    )
    assert secret is not None and len(secret) >= 32 and made.name == receiver.url
    assert services.notifications.subscription(ADMIN, made.id).has_secret
    receiver.failures = 2
    job = journaled(services, "HR", [R])
    start = datetime.now(UTC) + timedelta(seconds=1)

    assert deliver(services, start) == 1
    (first,), _ = services.notifications.deliveries(ADMIN)
    assert first.status is Status.PENDING and first.attempts == 1
    assert first.next_attempt == format_datetime(start + timedelta(minutes=1))
    assert first.last_error is not None and "HTTP 500" in first.last_error
    assert deliver(services, start + timedelta(seconds=59)) == 0  # not yet
    assert deliver(services, start + timedelta(minutes=1)) == 1
    (second,), _ = services.notifications.deliveries(ADMIN)
    assert second.next_attempt == format_datetime(start + timedelta(minutes=6))
    assert deliver(services, start + timedelta(minutes=6)) == 1
    (done,), _ = services.notifications.deliveries(ADMIN)
    assert done.status is Status.DELIVERED and done.attempts == 3
    assert [a.status for a in done.tried] == ["error", "error", "delivered"]
    assert receiver.answered == [500, 500, 204]
    for headers, body in receiver.received:
        assert _signed(secret, headers, body)
        assert headers["x-provisor-event"] == "job.running_with_error"
    sent = receiver.json()
    assert sent["subject"] == RUNNING and sent["data"]["jobId"] == job.id
    assert not _signed("another secret of 32 characters!", *receiver.received[0])


def test_a_delivery_is_given_up_after_its_attempts(
    sqlite_notifying: Services, receiver: Receiver
) -> None:
    services = sqlite_notifying
    services.notifications.options = NotificationOptions(backoff=(30.0,))  # two attempts
    lid_source(services, "HR")
    services.notifications.subscribe(
        ADMIN, {"topic": "job", "system": "HR", "channel": "webhook", "address": receiver.url}
    )
    receiver.failures = 10
    journaled(services, "HR", [R])
    start = datetime.now(UTC) + timedelta(seconds=1)
    assert deliver(services, start) == 1
    assert deliver(services, start + timedelta(seconds=30)) == 1
    (given_up,), _ = services.notifications.deliveries(ADMIN, status="failed")
    assert given_up.attempts == 2 and given_up.next_attempt is None
    assert deliver(services, start + timedelta(days=1)) == 0
    assert services.notifications.deliveries(ADMIN)[1] == 1
    deliver(services, start + timedelta(days=31))  # what is done with is forgotten in time
    assert services.notifications.deliveries(ADMIN)[1] == 0


def test_certificate_notices_reach_their_subscribers(
    sqlite_notifying: Services, mailbox: Mailbox
) -> None:
    services = sqlite_notifying
    hr = lid_source(services, "HR")
    lid_source(services, "Other")
    subscribe_mail(services, "certificate")  # every system
    subscribe_mail(services, "certificate", "Other")  # another system only
    subject = "Outbound Certificate Expiration. System: HR"
    with services.db.write(ADMIN) as tx:  # as CertificateService.maintain records a notice
        certs_store.insert_event(
            tx,
            system_id=hr.id,
            fingerprint="ab" * 32,
            kind="expiring-30",
            subject=subject,
            detail="The active outbound certificate of system HR expires in 30 days.",
            created=now(),
        )
    assert deliver(services) == 1
    assert deliver(services) == 0  # told once
    assert mailbox.subjects() == [subject]
    assert "expires in 30 days" in text(mailbox.messages[0][0])
    assert events(services) == ["certificate.expiring-30"]


def test_a_failed_login_burst_is_told_once_per_window(
    sqlite_notifying: Services, sqlite_settings: Settings, receiver: Receiver
) -> None:
    services = sqlite_notifying
    services.notifications.subscribe(
        ADMIN, {"topic": "login", "channel": "webhook", "address": receiver.url}
    )
    services.notifications.clock = lambda: 3600.0 * 500 + 10
    limiter = AttemptLimiter(2, on_burst=services.notifications.burst)
    for _ in range(8):  # the address's budget is spent at the 3rd, the name backs off at the 5th
        limiter.failed("192.0.2.7", "console:default:eve", tenant="default")
    services.notifications.close()  # the outbox is written
    assert events(services) == ["login.burst", "login.burst"]

    other = Services.open(sqlite_settings)  # another process, the same window
    try:
        other.notifications.clock = services.notifications.clock
        twin = AttemptLimiter(2, on_burst=other.notifications.burst)
        for _ in range(3):
            twin.failed("192.0.2.7", tenant="default")
        other.notifications.close()
        assert events(services) == ["login.burst", "login.burst"]  # the outbox's key
        other.notifications.clock = lambda: 3600.0 * 501 + 10  # the next window: told again
        other.notifications.burst("default", "address", "192.0.2.7")
        other.notifications.close()
    finally:
        other.close()
    assert len(events(services)) == 3
    assert deliver(services) == 3
    whom = sorted(body["data"]["who"] for body in map(receiver.json, range(3)))
    assert whom == ["192.0.2.7", "192.0.2.7", "console:default:eve"]


def test_a_test_message_without_a_mail_server_fails_readably(sqlite_settings: Settings) -> None:
    services = Services.open(sqlite_settings)  # no PROVISOR_SMTP_HOST
    try:
        made = subscribe_mail(services, "login")
        sent = asyncio.run(services.notifications.test(ADMIN, made))
        assert sent.status is Status.FAILED and sent.attempts == 1
        assert sent.last_error is not None and "PROVISOR_SMTP_HOST" in sent.last_error
    finally:
        services.close()


def test_the_jobs_process_loop_delivers(sqlite_notifying: Services, mailbox: Mailbox) -> None:
    """runtime.notification_delivery, as run_jobs starts it beside the certificate upkeep."""
    services = sqlite_notifying
    lid_source(services, "HR")
    subscribe_mail(services, "job", "HR")
    journaled(services, "HR", [R])

    async def scenario() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(notification_delivery(services.notifications, stop, 0.05))
        for _ in range(400):
            if mailbox.messages:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(loop, 10)

    asyncio.run(scenario())
    assert mailbox.subjects() == [RUNNING]
