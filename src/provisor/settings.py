"""Runtime settings, read from ``PROVISOR_*`` environment variables or given directly."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a provisor process needs to know, with safe defaults.

    Every field can be set with an environment variable named ``PROVISOR_<FIELD>``,
    e.g. ``PROVISOR_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="PROVISOR_", frozen=True, extra="ignore")

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
    max_source_systems: int | None = Field(
        20, ge=0, description="Most source systems a tenant may have (SAP: 20); empty: no limit."
    )
    max_target_systems: int | None = Field(
        50, ge=0, description="Most target systems a tenant may have (SAP: 50); empty: no limit."
    )
    max_proxy_systems: int | None = Field(
        None, ge=0, description="Most proxy systems a tenant may have; default: no limit."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

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
