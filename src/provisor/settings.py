"""Runtime settings, read from ``PROVISOR_*`` environment variables, a TOML configuration
file (``PROVISOR_CONFIG``) or given directly."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from provisor.connectors.outbound import OutboundPolicy, parse_entries

RATE_LIMITS_FILE = "rate-limits.sqlite"  # the inbound budget's store in the data folder (SQLite)
CONFIG_VARIABLE = "PROVISOR_CONFIG"  # the path of the TOML configuration file, when there is one
# Settings a file may hold instead of the value: <field>_file names a file whose content (without
# its final line break) is the value, e.g. a container secret in /run/secrets.
SECRET_FILES = {"secret_key_file": "secret_key", "database_url_file": "database_url"}


class SettingsFileError(ValueError):
    """The configuration file cannot be read, is no TOML, or holds a key that is no setting."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigFile(TomlConfigSettingsSource):
    """The TOML configuration file: its keys are the settings' field names (``data_dir``,
    ``database_url``...); an unknown key is an error that names it (a misspelt setting must
    not be silently ignored)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        if not path.is_file():
            raise SettingsFileError(f"No configuration file {path} ({CONFIG_VARIABLE}, --config).")
        try:
            super().__init__(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsFileError(f"The configuration file {path} is no TOML: {exc}.") from exc
        except OSError as exc:
            raise SettingsFileError(f"Cannot read the configuration file {path}: {exc}.") from exc
        unknown = sorted(set(self.toml_data) - set(settings_cls.model_fields))
        if unknown:
            raise SettingsFileError(
                f"The configuration file {path} has unknown keys: {', '.join(unknown)} (the "
                "keys are the settings' names, e.g. data_dir, database_url; see "
                "docs/operations.md)."
            )


def config_file() -> Path | None:
    """The configuration file ``PROVISOR_CONFIG`` names, if any."""
    value = os.environ.get(CONFIG_VARIABLE, "").strip()
    return Path(value) if value else None


class Settings(BaseSettings):
    """Everything a provisor process needs to know, with safe defaults.

    Every field can be set with an environment variable named ``PROVISOR_<FIELD>``,
    e.g. ``PROVISOR_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="PROVISOR_", frozen=True, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Given values first, then the environment, then the configuration file."""
        path = config_file()
        if path is None:
            return init_settings, env_settings
        return init_settings, env_settings, ConfigFile(settings_cls, path)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``secret_key_file`` and ``database_url_file``: the value read from the file, unless
        the value itself is given (it wins, wherever it comes from)."""
        if not isinstance(data, dict):
            return data
        for file_field, field in SECRET_FILES.items():
            path = data.get(file_field)
            if not path or data.get(field) not in (None, ""):
                continue
            try:
                value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{file_field}: cannot read {path}: {exc}") from exc
            if not value:
                raise ValueError(f"{file_field}: the file {path} is empty")
            data = {**data, field: value}
        return data

    data_dir: Path = Field(
        Path("provisor-data"),
        description="Folder holding the SQLite database, the key file and initial credentials.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database; default: SQLite in the data folder. "
        "postgresql://user@host/db selects PostgreSQL (psycopg).",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Master key (any string of 32+ characters). Default: a random key kept in "
        "<data-dir>/secret.key. Nodes sharing a PostgreSQL database must share it.",
    )
    secret_key_file: Path | None = Field(
        None,
        description="File holding the master key (e.g. a container secret); secret_key, when "
        "set, wins.",
    )
    database_url_file: Path | None = Field(
        None,
        description="File holding the database URL (it may carry a password); database_url, "
        "when set, wins.",
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "FULL",
        description="SQLite durability: FULL syncs every commit to disk (survives power loss); "
        "NORMAL survives a crash of the process but may lose the last commits on power loss.",
    )
    token_ttl_seconds: int = Field(3600, ge=60, le=86400, description="Lifetime of bearer tokens.")
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest request body accepted (HTTP 413 above)."
    )
    job_stale_seconds: int = Field(
        60,
        ge=2,
        description="A running job whose worker has not given a sign of life for this long is "
        "continued by another worker from its last committed page.",
    )
    job_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much the job runner processes (of provisor serve, provisor worker) "
        "lower their CPU priority (nice), so that API and real-time calls on the same host go "
        "first when both want the CPU; 0: the same priority.",
    )
    audit_retention_days: int = Field(
        365,
        ge=0,
        description="Days the audit log keeps a record; the jobs process purges older ones "
        "daily, each tenant's hash chain still verifiable; 0: keep every record.",
    )
    job_partition_size: int = Field(
        2000,
        ge=0,
        description="On PostgreSQL, a job's full read of more entities than this is split "
        "into partitions of about this many, run by every worker at once (one job on many "
        "workers); 0: never split. SQLite runs every job in one process.",
    )
    tenant_job_concurrency: int = Field(
        2,
        ge=1,
        description="Jobs of one tenant running at once, so that no tenant keeps the others' "
        "jobs waiting; a tenant's quota jobConcurrency overrides it.",
    )
    inbound_throttle_per_minute: int = Field(
        150,
        ge=0,
        description="Proxy and real-time calls a minute before each waits a second (0: none).",
    )
    inbound_max_per_minute: int = Field(
        200,
        ge=0,
        description="Proxy and real-time calls a minute before 429 Too Many Requests (0: none).",
    )
    auth_failures_per_minute: int = Field(
        30,
        ge=0,
        description="Unauthenticated or failed-authentication requests a minute from one client "
        "address (IPv6: one /64) before 429 Too Many Requests (0: no limit).",
    )
    secret_hash_iterations: int = Field(
        3,
        ge=1,
        description="Argon2id passes per hash of a client secret or user password (default with "
        "64 MiB: RFC 9106's second recommendation). Hashes keep the costs they were made with.",
    )
    secret_hash_memory_kib: int = Field(
        64 * 1024,
        ge=32,
        description="Argon2id memory per hash of a client secret or user password, in KiB. "
        "Lower costs make guessing cheaper: only for tests.",
    )
    bulk_max_operations: int = Field(1000, ge=1, description="SCIM Bulk maxOperations.")
    scim_default_count: int = Field(100, ge=1, description="Page size when a list asks none.")
    scim_max_count: int = Field(1000, ge=1, description="Largest page a list returns.")
    unique_emails: bool = Field(
        True, description="Local Identity Directory: no two users may share an e-mail address."
    )
    base_url: str | None = Field(
        None,
        description="Public base URL used in meta.location (e.g. behind a reverse proxy); "
        "default: taken from each request.",
    )
    smtp_host: str | None = Field(
        None,
        description="Mail server of notification e-mails; unset: e-mail subscriptions are "
        "not delivered (their attempts fail and are shown).",
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="The mail server's port.")
    smtp_username: str | None = Field(None, description="User name at the mail server.")
    smtp_password: SecretStr | None = Field(None, description="Password at the mail server.")
    smtp_from: str = Field(
        "provisor@localhost", description="The sender (From) of notification e-mails."
    )
    smtp_starttls: bool = Field(
        True,
        description="Upgrade the mail server connection with STARTTLS (and verify its "
        "certificate) before authenticating.",
    )
    smtp_tls_ca_file: Path | None = Field(
        None, description="PEM file of the CA that issued the mail server's certificate."
    )
    tenant_domain: str = Field(
        "",
        max_length=190,
        pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)?$",
        description="DNS domain under which each tenant has its host, <tenant>.<domain> "
        "(wildcard DNS and certificate); empty: tenants are addressed by the /t/<tenant> path "
        "prefix only. The installation's own host keeps the default tenant's URLs.",
    )
    max_source_systems: int | None = Field(
        20, ge=0, description="Most source systems a tenant may have (SAP: 20); empty: no limit."
    )
    max_target_systems: int | None = Field(
        50, ge=0, description="Most target systems a tenant may have (SAP: 50); empty: no limit."
    )
    max_proxy_systems: int | None = Field(
        None, ge=0, description="Most proxy systems a tenant may have; default: no limit."
    )
    tenant_name: str = Field(
        "provisor",
        min_length=1,
        max_length=27,
        pattern=r"^[\w.-]+$",
        description="Name of this tenant in the subjects of the certificates it issues "
        "(CN=<tenant>-<system id> for outbound certificates, at most 64 characters).",
    )
    cert_key_type: Literal["RSA-2048", "RSA-3072", "RSA-4096", "EC-P256", "EC-P384"] = Field(
        "RSA-2048", description="Key type and size of the certificates provisor generates."
    )
    cert_signature_hash: Literal["SHA256", "SHA384", "SHA512"] = Field(
        "SHA256", description="Hash of the signature of the certificates provisor issues."
    )
    cert_validity_days: int = Field(
        365, ge=1, le=3650, description="Validity of the certificates provisor issues."
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) of the HTTPS server (provisor serve)."
    )
    tls_key: Path | None = Field(None, description="PEM private key of the HTTPS server.")
    tls_client_ca: Path | None = Field(
        None,
        description="PEM file of partner CAs whose client certificates authenticate callers: "
        "attached ones, and renewals of an attached one the same CA issued (same subject); "
        "provisor's callers CA and attached certificates are always trusted.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose client certificate "
        "header, X-Forwarded-For (the client address of the failed-authentication budget and "
        "of access lines) and X-Request-ID are believed; comma-separated in the environment.",
    )
    client_cert_header: str = Field(
        "X-Forwarded-Client-Cert",
        description="Header in which a trusted reverse proxy passes the client certificate "
        '(URL-encoded PEM, PEM, base64 DER, Envoy\'s Cert="..." or RFC 9440 :base64:).',
    )
    file_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Absolute folders, besides the data folder, in which the files of systems "
        "(csv.user.file, ldap.tls.ca.file, ...) may lie; os.pathsep-separated in the environment.",
    )

    @field_validator("file_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("file_roots")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        for root in value:
            if not root.is_absolute():
                raise ValueError(f"file roots are absolute folders, not {str(root)!r}")
        return value

    # -- bounded requests and connections (docs/decisions/0014-bounded-requests.md) --------
    scim_filter_max_terms: int = Field(
        100, ge=1, description="Most comparisons in one SCIM filter (400 invalidFilter above)."
    )
    scim_filter_max_depth: int = Field(
        16, ge=2, description="Deepest nesting of a SCIM filter (and/or/not/[...] levels)."
    )
    scim_value_max_length: int = Field(
        64 * 1024, ge=256, description="Longest string value of a SCIM attribute, in characters."
    )
    scim_patch_max_operations: int = Field(
        1000, ge=1, description="Most operations in one SCIM PATCH request."
    )
    scim_patch_max_comparisons: int = Field(
        200_000,
        ge=1000,
        description="Most value comparisons one SCIM PATCH may cost (e.g. removing n of m "
        "e-mails costs n*m); 400 tooMany above.",
    )
    statement_timeout_seconds: float = Field(
        30,
        ge=0,
        description="PostgreSQL: a statement running longer is cancelled (the request gets "
        "503); 0: no limit. Migrations run without it.",
    )
    entity_lock_seconds: float = Field(
        30,
        gt=0,
        description="Longest wait of a real-time call or a job for another one writing the "
        "same source entity (they take turns); the call then gets 503.",
    )
    console_idle_minutes: float = Field(
        30, gt=0, description="A console session unused this long ends (sign in again)."
    )
    console_session_hours: float = Field(
        12, gt=0, description="A console session ends this long after sign-in, used or not."
    )
    json_max_depth: int = Field(
        32, ge=4, description="Deepest nesting of arrays/objects in a JSON request body."
    )
    http_keep_alive_seconds: float = Field(
        5, gt=0, description="An idle keep-alive connection is closed after this long."
    )
    http_header_timeout_seconds: float = Field(
        10, gt=0, description="A connection whose request line and headers take longer is closed."
    )
    http_body_grace_seconds: float = Field(
        10,
        gt=0,
        description="A request body may take this long at any speed; after it, one arriving "
        "slower than http_body_min_bytes_per_second closes the connection.",
    )
    http_body_min_bytes_per_second: int = Field(
        1024, ge=0, description="Slowest average rate of a request body after the grace time."
    )
    http_max_connections: int = Field(
        1000,
        ge=2,
        description="Open connections per worker process; above it, the oldest connection that "
        "is still sending its request (or idle) is closed to make room.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics: bool = Field(
        True,
        description="Record metrics (GET /metrics, permission metrics); false: no request, job "
        "or login is counted and /metrics answers 404.",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="provisor worker: serve its metrics in the Prometheus format, without "
        "authentication, on this port of PROVISOR_METRICS_ADDRESS (default: none).",
    )
    metrics_address: str = Field(
        "127.0.0.1",
        description="The address of PROVISOR_METRICS_PORT's listener (a private network's).",
    )
    otel_endpoint: str | None = Field(
        None,
        description="Base URL of an OpenTelemetry collector's OTLP/HTTP receiver (spans go to "
        "<url>/v1/traces); OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "
        "do too. Unset: no tracing. Needs the extra provisor[tracing].",
    )
    access_log: bool = Field(
        False,
        description="One JSON line per request (method, path without the query, status, "
        "duration, bytes, client address, request id, tenant, the authenticated caller).",
    )
    # -- the outbound policy of connectors (provisor.connectors.outbound) --
    outbound_deny: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses, networks (CIDR) and host names (*.example.org: every name "
        "below) connectors must not connect to, besides the always denied link-local, cloud "
        "metadata and special-purpose addresses; comma-separated in the environment.",
    )
    outbound_deny_private: bool = Field(
        False,
        description="Also deny private networks (10/8, 172.16/12, 192.168/16, 100.64/10, "
        "fc00::/7) and loopback (127/8, ::1) to connectors.",
    )
    outbound_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="When set, connectors connect only to these host names, addresses and "
        "networks (a denial still wins); comma-separated in the environment.",
    )

    @field_validator("outbound_deny", "outbound_allow", mode="before")
    @classmethod
    def _outbound_split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("outbound_deny", "outbound_allow")
    @classmethod
    def _outbound_entries(cls, value: list[str]) -> list[str]:
        parse_entries(value)  # ValueError: neither an address, a network nor a host name
        return value

    @property
    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy.of(
            deny=self.outbound_deny,
            allow=self.outbound_allow,
            deny_private=self.outbound_deny_private,
        )

    @property
    def otel_traces_url(self) -> str | None:
        """Where spans are posted: PROVISOR_OTEL_ENDPOINT's (or the standard
        OTEL_EXPORTER_OTLP_ENDPOINT's) ``/v1/traces``, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
        as it is; None: tracing off."""
        base = self.otel_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if base:
            return base.rstrip("/") + "/v1/traces"
        return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError: not an address or network
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver provisor uses spelled out."""
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'provisor.db').resolve()}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")
