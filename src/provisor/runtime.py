"""The long-lived objects of a provisor process, built from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog
from argon2 import PasswordHasher
from cryptography import x509
from sqlalchemy import inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from provisor.admins.oidc import OidcClient
from provisor.admins.service import AdministratorService
from provisor.admins.sso import SsoService
from provisor.audit.service import AuditService
from provisor.auth.attempts import AttemptLimiter
from provisor.auth.checks import SecretChecks
from provisor.auth.clients import INITIAL_ADMIN_FILE, INITIAL_OPERATOR_FILE, ClientService
from provisor.auth.keys import (
    KEY_FILE,
    create_key_file,
    derive_key,
    load_master_key,
    read_key_file,
)
from provisor.auth.passwords import secret_hasher
from provisor.auth.tokens import TokenSigner
from provisor.certs.service import CertificateOptions, CertificateService, ClientKeys
from provisor.certs.x509 import KeySpec
from provisor.configuration.bundles import bundle
from provisor.configuration.service import ConfigurationService
from provisor.connectors.outbound import GuardedTransport
from provisor.connectors.paths import TENANTS_FOLDER, FileRoots
from provisor.context import ANY_TENANT, Context, PerTenant
from provisor.directory.service import Directory, DirectoryOptions
from provisor.errors import ConfigError
from provisor.installation.health import Readiness
from provisor.installation.keys import (
    ADMINISTRATOR_SECRETS,
    CERTIFICATE_KEYS,
    NEW_KEY_FILE,
    SYSTEM_CREDENTIALS,
    MasterKey,
)
from provisor.installation.rotation import BATCH, Progress, rotate, rotation_done
from provisor.jobs.ports import JobEvents
from provisor.jobs.scheduler import ScheduleService
from provisor.jobs.service import JobQueue, JobService
from provisor.metrics import instruments as metrics
from provisor.notifications.senders import SmtpSettings
from provisor.notifications.service import (
    SECRETS_PURPOSE,
    NotificationOptions,
    NotificationService,
)
from provisor.proxy.activity import ProxyActivity
from provisor.proxy.service import ProxyService
from provisor.ratelimit import InboundBudget
from provisor.realtime.service import RealtimeService
from provisor.realtime.timeline import IdentityTimeline
from provisor.scim.limits import Limits as ScimLimits
from provisor.settings import RATE_LIMITS_FILE, Settings
from provisor.storage import migrate, tables
from provisor.storage.database import Database
from provisor.systems.secrets import CredentialCipher
from provisor.systems.service import Limits, SystemService
from provisor.tenants.service import TenantService

log = structlog.get_logger("provisor.runtime")

UPKEEP_SECONDS = 3600.0  # how often the jobs process applies the certificates' expiry rules
DELIVERY_SECONDS = 15.0  # how often the jobs process looks for notifications to send
AUDIT_UPKEEP_SECONDS = 86400.0  # how often it purges the audit log by its retention


@dataclass(frozen=True, slots=True)
class Services:
    """Every long-lived service of a process, built once by :meth:`open` (the one
    composition root: the web application, the CLI and the jobs process take their services
    from here and build none of their own)."""

    settings: Settings
    db: Database
    clients: ClientService
    administrators: AdministratorService  # the console's people and their sessions
    sso: SsoService  # the console's single sign-on with the tenants' OpenID Connect providers
    directory: Directory
    systems: SystemService
    jobs: JobService
    schedules: ScheduleService
    configuration: ConfigurationService  # export, plan and apply of a tenant's configuration
    certificates: CertificateService
    realtime: RealtimeService
    timeline: IdentityTimeline
    proxy: ProxyService
    proxy_activity: ProxyActivity  # the proxy's calls, written in batches by a thread
    tenants: TenantService
    inbound: PerTenant[InboundBudget]  # each tenant's budget of proxy and real-time calls
    attempts: AttemptLimiter  # unauthenticated and failed-authentication budgets
    secret_checks: SecretChecks  # the bounded pool that checks client secrets
    master_key: MasterKey  # this node's master key against the database's check value
    readiness: Readiness  # /health/ready's checks, cached a moment
    notifications: NotificationService  # subscriptions and the outbox of messages
    audit: AuditService  # the audit log's views, verification and retention

    @classmethod
    def open(cls, settings: Settings) -> Services:
        """Connect to the database (lazily) and build the services; no schema changes."""
        metrics.configure(enabled=settings.metrics)
        db = open_database(settings)
        master = load_master_key(
            settings.secret_key.get_secret_value() if settings.secret_key else None,
            settings.data_dir,
        )
        directory = build_directory(settings, db)
        systems = build_systems(settings, db, master, directory)
        clients = build_clients(settings, db, master)
        administrators = build_administrators(settings, db, master)
        certificates = build_certificates(settings, db, master, systems, clients)
        notifications = build_notifications(settings, db, master, systems)
        jobs = build_jobs(settings, db, systems, notifications)
        master_key = MasterKey(db, master, key_source(settings), settings.data_dir)
        schedules = build_schedules(db, jobs)
        tenants = TenantService(db, clients, files=settings.data_dir / TENANTS_FOLDER)
        configuration = build_configuration(systems, schedules, directory)
        tenants.configure = configuration.apply  # a tenant created from a bundle
        tenants.bundle = bundle
        systems.limits_of = lambda tenant: tenant_limits(settings, tenants, tenant)
        directory.entity_quota = lambda tenant: tenants.quotas(tenant).directory_entities
        return cls(
            settings=settings,
            db=db,
            clients=clients,
            administrators=administrators,
            sso=build_sso(settings, administrators, master),
            directory=directory,
            systems=systems,
            jobs=jobs,
            certificates=certificates,
            schedules=schedules,
            configuration=configuration,
            realtime=RealtimeService(jobs, db),
            timeline=IdentityTimeline(db, directory),
            proxy=build_proxy(systems, directory),
            proxy_activity=ProxyActivity(db),
            tenants=tenants,
            inbound=PerTenant(lambda tenant: InboundBudget(settings, tenant)),
            attempts=AttemptLimiter(
                settings.auth_failures_per_minute, on_burst=notifications.burst
            ),
            secret_checks=SecretChecks(),
            master_key=master_key,
            readiness=Readiness(db, master_key, jobs),
            notifications=notifications,
            audit=AuditService(db, retention_days=settings.audit_retention_days),
        )

    async def aclose(self) -> None:
        """Close what holds connections open, the real-time routes' and the proxy's
        back-ends first (the web application's shutdown)."""
        await self.realtime.aclose()
        await self.proxy.aclose()
        self.close()

    def close(self) -> None:
        self.proxy_activity.close()
        self.notifications.close()
        self.secret_checks.close()
        for budget in self.inbound.values():
            budget.close()
        self.db.dispose()


# -- one builder per service (constructors change independently: keep each in its own) --------


def key_source(settings: Settings) -> str:
    """Where this node's master key comes from, for messages."""
    if settings.secret_key is not None:
        return "PROVISOR_SECRET_KEY"
    return str((settings.data_dir / KEY_FILE).resolve())


def open_database(settings: Settings) -> Database:
    return Database(
        settings.sqlalchemy_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        statement_timeout=settings.statement_timeout_seconds,
    )


def build_directory(settings: Settings, db: Database) -> Directory:
    return Directory(
        db,
        DirectoryOptions(
            unique_emails=settings.unique_emails,
            default_count=settings.scim_default_count,
            max_count=settings.scim_max_count,
            limits=ScimLimits(
                filter_max_terms=settings.scim_filter_max_terms,
                filter_max_depth=settings.scim_filter_max_depth,
                value_max_length=settings.scim_value_max_length,
                patch_max_operations=settings.scim_patch_max_operations,
                patch_max_comparisons=settings.scim_patch_max_comparisons,
            ),
            hasher=hasher(settings),
        ),
    )


def tenant_limits(settings: Settings, tenants: TenantService, tenant: str) -> Limits:
    """A tenant's limits of systems (spec §4.2): its quotas, else the installation's."""
    quotas = tenants.quotas(tenant)
    return Limits(
        source=_first(quotas.source_systems, settings.max_source_systems),
        target=_first(quotas.target_systems, settings.max_target_systems),
        proxy=_first(quotas.proxy_systems, settings.max_proxy_systems),
    )


def _first(value: int | None, default: int | None) -> int | None:
    return value if value is not None else default


def build_systems(
    settings: Settings, db: Database, master: bytes, directory: Directory
) -> SystemService:
    return SystemService(
        db,
        CredentialCipher(master, SYSTEM_CREDENTIALS),
        limits=Limits(
            source=settings.max_source_systems,
            target=settings.max_target_systems,
            proxy=settings.max_proxy_systems,
        ),
        services={
            "directory": directory,
            "data_dir": settings.data_dir,
            "file_roots": FileRoots(
                settings.data_dir, settings.file_roots, reserved=server_files(settings)
            ),
            "outbound": settings.outbound_policy,
        },
        certificates=ClientKeys(db, CredentialCipher(master, CERTIFICATE_KEYS)),  # for connectors
    )


def build_clients(settings: Settings, db: Database, master: bytes) -> ClientService:
    signer = TokenSigner(derive_key(master, "oauth2 bearer tokens"), settings.token_ttl_seconds)
    return ClientService(db, signer, hasher=hasher(settings))


def build_administrators(settings: Settings, db: Database, master: bytes) -> AdministratorService:
    return AdministratorService(
        db,
        CredentialCipher(master, ADMINISTRATOR_SECRETS),
        hasher(settings),
        idle_seconds=settings.console_idle_minutes * 60,
        absolute_seconds=settings.console_session_hours * 3600,
    )


def build_sso(
    settings: Settings, administrators: AdministratorService, master: bytes
) -> SsoService:
    """Every request to an identity provider obeys the outbound policy (the issuer is an
    administrator's input) and verifies the provider's certificate (the TLS context is made
    at the first sign-in: loading the CA bundle takes a fifth of a second)."""
    verify = functools.cache(httpx.create_ssl_context)
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)
    client = OidcClient(
        lambda: GuardedTransport(settings.outbound_policy, verify=verify(), limits=limits)
    )
    return SsoService(administrators, client, derive_key(master, "console single sign-on"))


def hasher(settings: Settings) -> PasswordHasher:
    """How client secrets and user passwords are hashed."""
    return secret_hasher(settings.secret_hash_iterations, settings.secret_hash_memory_kib)


def build_certificates(
    settings: Settings,
    db: Database,
    master: bytes,
    systems: SystemService,
    clients: ClientService,
) -> CertificateService:
    return CertificateService(
        db,
        CredentialCipher(master, CERTIFICATE_KEYS),
        systems,
        clients,
        certificate_options(settings),
    )


def build_notifications(
    settings: Settings, db: Database, master: bytes, systems: SystemService
) -> NotificationService:
    smtp = None
    if settings.smtp_host:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            ca_file=settings.smtp_tls_ca_file,
        )
    return NotificationService(
        db,
        systems,
        CredentialCipher(master, SECRETS_PURPOSE),
        settings.outbound_policy,
        NotificationOptions(base_url=settings.base_url, smtp=smtp),
    )


def build_jobs(
    settings: Settings, db: Database, systems: SystemService, events: JobEvents | None = None
) -> JobService:
    return JobService(
        db,
        systems,
        events=events,
        queue=None if settings.is_sqlite else _task_queue(),
        stale_seconds=settings.job_stale_seconds,
        lock_seconds=settings.entity_lock_seconds,
        tenant_job_concurrency=settings.tenant_job_concurrency,
        partition_size=settings.job_partition_size,
    )


def build_schedules(db: Database, jobs: JobService) -> ScheduleService:
    return ScheduleService(db, jobs)


def build_configuration(
    systems: SystemService, schedules: ScheduleService, directory: Directory
) -> ConfigurationService:
    return ConfigurationService(systems, schedules, directory)


def build_proxy(systems: SystemService, directory: Directory) -> ProxyService:
    return ProxyService(systems, directory.catalog.registry, directory.options.limits)


def certificate_options(settings: Settings) -> CertificateOptions:
    """How the tenant issues certificates, and the client CAs of ``tls_client_ca``."""
    cas: tuple[x509.Certificate, ...] = ()
    if settings.tls_client_ca is not None:
        try:
            cas = tuple(x509.load_pem_x509_certificates(settings.tls_client_ca.read_bytes()))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"The client CA file {settings.tls_client_ca} cannot be read as PEM "
                f"certificates: {exc}"
            ) from exc
    return CertificateOptions(
        tenant=settings.tenant_name,
        key=KeySpec(settings.cert_key_type),
        digest=settings.cert_signature_hash,
        validity_days=settings.cert_validity_days,
        client_cas=cas,
    )


def server_files(settings: Settings) -> list[Path]:
    """The files the server's settings name: no system property may name them."""
    folder = settings.data_dir
    stores = [folder / "provisor.db", folder / RATE_LIMITS_FILE]
    url = make_url(settings.sqlalchemy_url)
    if settings.is_sqlite and url.database:
        stores.append(Path(url.database))
    files = [folder / KEY_FILE, folder / INITIAL_ADMIN_FILE, folder / INITIAL_OPERATOR_FILE]
    files += [
        p.with_name(p.name + s)
        for p in stores
        for s in ("", "-wal", "-shm", "-journal", ".writelock", ".entitylocks")
    ]
    files += [p for p in (settings.tls_cert, settings.tls_key, settings.tls_client_ca) if p]
    return files


def _task_queue() -> JobQueue:
    from provisor.jobs.pgqueue import ProcrastinateQueue

    return ProcrastinateQueue()


def yield_to_requests(settings: Settings) -> None:
    """Lower this process's CPU priority by ``PROVISOR_JOB_NICE``: a job runner's process, so
    that one tenant's big job leaves the CPU to every tenant's API and real-time calls when
    both want it (the job goes as fast when the CPU is idle)."""
    if settings.job_nice:
        os.nice(settings.job_nice)


async def run_jobs(services: Services, stop: asyncio.Event, *, concurrency: int = 4) -> None:
    """Run jobs until ``stop`` is set: queued and scheduled ones from the database on SQLite
    (this process is the only runner), procrastinate's tasks on PostgreSQL."""
    from provisor.jobs.executor import Executor, worker_name

    upkeep = asyncio.create_task(certificate_upkeep(services.certificates, stop))
    delivery = asyncio.create_task(notification_delivery(services.notifications, stop))
    retention = asyncio.create_task(audit_upkeep(services.audit, stop))
    try:
        if services.settings.is_sqlite:
            await Executor(services.jobs, services.schedules, concurrency=concurrency).run(stop)
            return
        from provisor.jobs.pgqueue import ProcrastinateWorker

        worker = ProcrastinateWorker(
            services.jobs,
            services.schedules,
            services.settings.sqlalchemy_url,
            name=worker_name(),
            concurrency=concurrency,
        )
        await worker.run(stop)
    finally:
        upkeep.cancel()
        delivery.cancel()
        retention.cancel()


async def periodically(
    name: str, work: Callable[[], Awaitable[object]], stop: asyncio.Event, every: float
) -> None:
    """Run ``work`` now and then every ``every`` seconds until ``stop`` is set; a failure is
    logged (as ``name`` failed) and tried again next time."""
    while not stop.is_set():
        try:
            await work()
        except Exception:
            log.exception(f"{name} failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def certificate_upkeep(
    certificates: CertificateService, stop: asyncio.Event, every: float = UPKEEP_SECONDS
) -> None:
    """Apply the outbound certificates' expiry rules of every tenant (regeneration, notices)."""
    ctx = Context.system("maintenance", tenant=ANY_TENANT)
    await periodically(
        "certificate upkeep", lambda: asyncio.to_thread(certificates.maintain, ctx), stop, every
    )


async def notification_delivery(
    notifications: NotificationService, stop: asyncio.Event, every: float = DELIVERY_SECONDS
) -> None:
    """Send the notifications due (every tenant's)."""
    ctx = Context.system("notifications", tenant=ANY_TENANT)
    await periodically("notification delivery", lambda: notifications.deliver_due(ctx), stop, every)


async def audit_upkeep(
    audit: AuditService, stop: asyncio.Event, every: float = AUDIT_UPKEEP_SECONDS
) -> None:
    """Purge the audit records older than the retention (each purge recorded in its chain)."""
    ctx = Context.system("maintenance", tenant=ANY_TENANT)

    async def purge() -> None:
        purged = await asyncio.to_thread(audit.purge, ctx)
        if purged:
            log.info("audit records purged", tenants=purged)

    await periodically("audit retention", purge, stop, every)


@dataclass(frozen=True, slots=True)
class Setup:
    """What :func:`initialise` found and made: whether it created the data folder and the
    master key, the database's revision before and after, and the credentials files of the
    initial admin (of the default tenant) and the initial operator (of the installation) when
    it wrote them."""

    folder_created: bool
    key_created: bool
    revision_before: str | None
    revision: str | None
    admin_file: Path | None
    operator_file: Path | None
    administrator_file: Path | None  # the console's first administrator


def initialise(settings: Settings) -> Setup:
    """Make or bring up to date an installation (``serve`` and ``init``, the only ones that
    create a data folder or a master key): the folder, the key, the schema, and on an empty
    store the initial admin. A database without its key is a ConfigError, never a new key:
    a new one could not read the credentials stored with the old one. Nodes started together
    on one database set it up one after the other (:func:`migrate.setting_up`)."""
    folder = settings.data_dir
    folder_created = not folder.is_dir()
    key_created = settings.secret_key is None and not (folder / KEY_FILE).is_file()
    if key_created and _database_in_use(settings):
        raise ConfigError(_lost_key(settings))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    services = Services.open(settings)
    try:
        with migrate.setting_up(services.db):
            before = migrate.current_revision(services.db)
            migrate.upgrade(services.db)
            services.master_key.verify()  # before anything is encrypted with it
            upkeep = Context.system("maintenance", tenant=ANY_TENANT)
            sealed = services.systems.seal_plain_credentials(upkeep)
            if sealed:
                log.warning("credentials stored as plain text encrypted", count=sealed)
            if services.db.bypasses_row_security():
                log.warning(
                    "the database role bypasses row-level security: the tenants' second wall is "
                    "down; connect as an ordinary role that owns the database (docs/security.md)"
                )
            return Setup(
                folder_created=folder_created,
                key_created=key_created,
                revision_before=before,
                revision=migrate.current_revision(services.db),
                admin_file=services.clients.ensure_initial_admin(folder),
                operator_file=services.clients.ensure_initial_operator(folder),
                administrator_file=services.administrators.ensure_initial(folder),
            )
    finally:
        services.close()


def prepare(settings: Settings) -> Path | None:
    """Bring the database up to date and, on an empty store, create the initial admin
    (:func:`initialise`). Returns the path of the initial admin's credentials file when one
    was written."""
    return initialise(settings).admin_file


def require_installation(settings: Settings) -> None:
    """ConfigError unless the data folder and the master key exist: every local command but
    ``serve`` and ``init`` uses an installation and never makes one. With PostgreSQL the
    folder holds only the key (none is needed with PROVISOR_SECRET_KEY)."""
    folder = settings.data_dir
    if settings.is_sqlite and not folder.is_dir():
        raise ConfigError(
            f"No data folder {folder.resolve()}. Name the existing one with --data-dir "
            "(or PROVISOR_DATA_DIR), or create one with `provisor init` or `provisor serve`."
        )
    if settings.secret_key is not None or (folder / KEY_FILE).is_file():
        return
    if _database_in_use(settings):
        raise ConfigError(_lost_key(settings))
    raise ConfigError(
        f"No master key {(folder / KEY_FILE).resolve()}: {folder.resolve()} is no provisor "
        "data folder. Name the existing one with --data-dir (or PROVISOR_DATA_DIR), or create "
        "one with `provisor init` or `provisor serve`."
    )


def _lost_key(settings: Settings) -> str:
    key = (settings.data_dir / KEY_FILE).resolve()
    return (
        f"The database is in use but its master key {key} is missing: restore the key file "
        "(or set PROVISOR_SECRET_KEY to the key), or name the right data folder with "
        "--data-dir (or PROVISOR_DATA_DIR). A new key could not read the stored credentials."
    )


def _database_in_use(settings: Settings) -> bool:
    """Whether the database holds what the master key signs or encrypts: clients (their
    tokens), systems (their credentials), the certificate authority (its keys). A missing
    or freshly migrated database holds none of it."""
    if settings.is_sqlite:
        database = make_url(settings.sqlalchemy_url).database
        if not database or not Path(database).is_file():
            return False
    db = open_database(settings)
    try:
        with db.unscoped_read() as conn:
            present = inspect(conn)
            return any(
                present.has_table(table.name)
                and conn.execute(select(table.c[0]).limit(1)).first() is not None
                for table in (tables.clients, tables.systems, tables.certificate_authority)
            )
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip()
        raise ConfigError(f"Cannot read the database: {reason}") from exc
    finally:
        db.dispose()


@dataclass(frozen=True, slots=True)
class Rotation:
    """What :func:`rotate_master_key` did: the rows re-encrypted per column (none when the
    database was the new key's already: an earlier run stopped after its last transaction),
    and the key file now holding the new key (None with PROVISOR_SECRET_KEY: the operator
    sets it to the new key)."""

    counts: dict[str, int]
    key_file: Path | None


def rotate_master_key(
    settings: Settings,
    new_key_file: Path | None = None,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> Rotation:
    """Re-encrypt everything the master key protects under a new master key (``provisor keys
    rotate``; every server and worker stopped). With the data folder's key file, the new key
    is written first to ``secret.key.new`` (from ``new_key_file`` if given, else made), and
    replaces ``secret.key`` once the database is the new key's; run again after a failure,
    the rotation resumes with that file. With PROVISOR_SECRET_KEY, ``new_key_file`` names the
    new key."""
    require_installation(settings)
    services = Services.open(settings)
    try:
        migrate.upgrade(services.db)
        runners = services.jobs.runners(Context.system("maintenance", tenant=ANY_TENANT))
        if runners:
            raise ConfigError(
                "Job runners are running ("
                + ", ".join(r.name for r in runners)
                + "): stop every provisor serve and provisor worker of the installation first "
                "(a stopped one is forgotten at once, a killed one after "
                "PROVISOR_JOB_STALE_SECONDS)."
            )
        old = load_master_key(
            settings.secret_key.get_secret_value() if settings.secret_key else None,
            settings.data_dir,
        )
        pending = settings.data_dir / NEW_KEY_FILE
        if settings.secret_key is not None:
            if new_key_file is None:
                raise ConfigError(
                    "The master key is PROVISOR_SECRET_KEY: name a file holding the new key "
                    "(32 characters or more) with --new-key-file."
                )
            new = read_key_file(new_key_file)
        else:
            if new_key_file is not None:
                create_key_file(pending, read_key_file(new_key_file))
            else:
                create_key_file(pending)
            new = read_key_file(pending)
            if new_key_file is not None and new != read_key_file(new_key_file):
                raise ConfigError(
                    f"{pending} holds another new key, of a rotation that did not end: run "
                    "provisor keys rotate without --new-key-file to finish it."
                )
        if rotation_done(services.db, new):
            counts: dict[str, int] = {}
        else:
            counts = rotate(services.db, old, new, batch=batch, progress=progress)
        if settings.secret_key is not None:
            return Rotation(counts, None)
        key_file = settings.data_dir / KEY_FILE
        os.replace(pending, key_file)
        folder = os.open(settings.data_dir, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename is on disk
        finally:
            os.close(folder)
        return Rotation(counts, key_file)
    finally:
        services.close()
