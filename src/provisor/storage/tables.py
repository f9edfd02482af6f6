"""The database schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are stored as ISO 8601 text in UTC with microseconds (``2024-05-01T10:00:00.000000Z``)
so that they sort and compare as text in both databases. JSON documents are ``jsonb`` on
PostgreSQL (so filters can look inside) and text on SQLite; both are read back as text.

Every table holding a tenant's data has a ``tenant`` column (:func:`TenantColumn`, listed in
:data:`TENANT_TABLES`); the others (``tenants``, ``job_runners``, ``installation``) are the
installation's.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType


class _AsJSON(FunctionElement[Any]):
    inherit_cache = True


class _AsText(FunctionElement[Any]):
    inherit_cache = True


@compiles(_AsJSON)
def _as_json_default(element: _AsJSON, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_AsJSON, "postgresql")
def _as_json_pg(element: _AsJSON, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS JSONB)"


@compiles(_AsText)
def _as_text_default(element: _AsText, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_AsText, "postgresql")
def _as_text_pg(element: _AsText, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


class _TextJSONB(UserDefinedType[str]):
    """jsonb in DDL; values pass through as text (the statements cast them)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSONB"


class JSONDocument(TypeDecorator[str]):
    """A JSON document given and returned as text: jsonb on PostgreSQL, TEXT elsewhere."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return _TextJSONB()  # not the dialect's JSONB, which would encode the text again
        return cast(TypeEngine[Any], dialect.type_descriptor(Text()))

    def bind_expression(self, bindvalue: Any) -> ColumnElement[Any]:
        return _AsJSON(bindvalue)

    def column_expression(self, column: Any) -> ColumnElement[Any]:
        return _AsText(column)

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return value


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

Time = String(32)
Id = String(64)
TENANT_NAME_LENGTH = 63  # a DNS label: tenants are addressed by host name too


def TenantColumn(*, primary_key: bool = False) -> Column[str]:
    """The tenant a row belongs to: every table holding a tenant's data has it (isolation,
    row-level security on PostgreSQL); ``Transaction.scoped`` and ``tenant_values`` fill it."""
    return Column("tenant", String(TENANT_NAME_LENGTH), nullable=False, primary_key=primary_key)


# --- tenants --------------------------------------------------------------------------------

tenants = Table(
    "tenants",
    metadata,
    # The installation's tenants (the operator's); every other table's rows belong to one.
    Column("name", String(TENANT_NAME_LENGTH), primary_key=True),
    Column("title", String(255), nullable=False, server_default=""),
    Column("kind", String(16), nullable=False),  # standalone | bundle
    Column("bundle", String(64), nullable=True),  # the template it was created from
    Column("enabled", Integer, nullable=False),
    Column("quotas", Text, nullable=False, server_default="{}"),  # JSON: limits set for it
    Column("created", Time, nullable=False),
    Column("last_modified", Time, nullable=False),
)

installation = Table(
    "installation",
    metadata,
    # The installation's own values, one row each: the master key's check value (an HMAC of a
    # fixed label under a key derived from the master key) and, during a rotation, the next
    # key's (installation/keys.py). Never a secret.
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated", Time, nullable=False),
)

# --- technical users (clients) --------------------------------------------------------------

clients = Table(
    "clients",
    metadata,
    TenantColumn(),
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("permissions", Text, nullable=False),  # space-separated
    Column("created", Time, nullable=False),
    UniqueConstraint("name", "tenant"),
)

client_secrets = Table(
    "client_secrets",
    metadata,
    TenantColumn(),
    Column("id", Id, primary_key=True),
    Column(
        "client_id", Id, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("secret_hash", Text, nullable=False),
    Column("created", Time, nullable=False),
    Column("expires", Time, nullable=True),
)

# --- Local Identity Directory ---------------------------------------------------------------

users = Table(
    "users",
    metadata,
    TenantColumn(),
    Column("id", Id, primary_key=True),
    Column("user_name", Text, nullable=False),
    Column("user_name_key", Text, nullable=False),  # case-folded, unique per tenant
    Column("external_id", Text, nullable=True, index=True),
    Column("display_name", Text, nullable=True),
    Column("display_name_key", Text, nullable=True, index=True),
    Column("created", Time, nullable=False),
    Column("last_modified", Time, nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("doc", JSONDocument, nullable=False),
    Column("password_hash", Text, nullable=True),
    UniqueConstraint("user_name_key", "tenant"),
)

user_emails = Table(
    "user_emails",
    metadata,
    TenantColumn(),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("value_key", Text, primary_key=True),
    Index("ix_user_emails_value_key", "value_key"),
)

groups = Table(
    "groups",
    metadata,
    TenantColumn(),
    Column("id", Id, primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("display_name_key", Text, nullable=False, index=True),
    Column("external_id", Text, nullable=True, index=True),
    Column("created", Time, nullable=False),
    Column("last_modified", Time, nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("doc", JSONDocument, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    TenantColumn(),
    Column("group_id", Id, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", Id, primary_key=True),
    Column("member_type", String(8), nullable=False),  # "User" | "Group"
    Column("display", Text, nullable=True),  # as the client gave it (RFC 7643 §2.4)
    Index("ix_group_members_member_id", "member_id"),
)

unique_values = Table(
    "unique_values",
    metadata,
    TenantColumn(primary_key=True),
    Column("scope", String(512), primary_key=True),  # e.g. "User:emails.value"
    Column("value_key", Text, primary_key=True),
    Column("resource_id", Id, nullable=False, index=True),
)

custom_schemas = Table(
    "custom_schemas",
    metadata,
    TenantColumn(primary_key=True),
    Column("id", String(512), primary_key=True),
    Column("resource_type", String(32), nullable=False),
    Column("doc", Text, nullable=False),
    Column("created", Time, nullable=False),
)

counters = Table(
    "counters",
    metadata,
    TenantColumn(primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

# --- systems ----------------------------------------------------------------------------------

systems = Table(
    "systems",
    metadata,
    TenantColumn(),
    Column("id", Id, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("name_key", String(100), nullable=False),  # casefolded: one "HR" per tenant
    Column("description", Text, nullable=False, server_default=""),
    Column("type", String(64), nullable=False),
    Column("role", String(16), nullable=False, index=True),
    Column("enabled", Integer, nullable=False),
    Column("origin", String(32), nullable=False),
    Column("version", Integer, nullable=False),  # moves on every change (ETag)
    Column("created", Time, nullable=False),
    Column("last_modified", Time, nullable=False),
    UniqueConstraint("name_key", "tenant"),
)

system_properties = Table(
    "system_properties",
    metadata,
    TenantColumn(),
    Column("system_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),  # Fernet token when credential
    Column("credential", Integer, nullable=False),
)

system_sources = Table(
    "system_sources",
    metadata,
    TenantColumn(),
    Column("target_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "source_id",
        Id,
        ForeignKey("systems.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

transformation_versions = Table(
    "transformation_versions",
    metadata,
    TenantColumn(),
    Column("system_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # read | write
    Column("version", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("author", String(255), nullable=False),
    Column("created", Time, nullable=False),
)

# --- jobs ---------------------------------------------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    TenantColumn(),
    Column("id", Id, primary_key=True),
    Column("source_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), nullable=False),
    Column("source_name", String(100), nullable=False),
    Column("type", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("triggered_by", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("read_mode", String(16), nullable=True),
    Column("created", Time, nullable=False, index=True),
    Column("started", Time, nullable=True),
    Column("ended", Time, nullable=True),
    Column("heartbeat", Time, nullable=True),  # a running job's worker is alive
    Column("error", Text, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("stop_requested", Integer, nullable=False, server_default="0"),
    Column("resumed_from", Id, nullable=True),
    Column("chain_id", Id, nullable=False),
    Column("checkpoint", Text, nullable=False, server_default="{}"),  # entities done, by type
    Column("options", Text, nullable=False, server_default="{}"),  # e.g. {"trace": true}
    Column("worker", String(255), nullable=True),
    Index("ix_jobs_source_id_status", "source_id", "status"),
    Index("ix_jobs_status", "status"),  # the queued jobs (the metrics' queue depth)
)

job_statistics = Table(
    "job_statistics",
    metadata,
    TenantColumn(),
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_type", String(32), primary_key=True),
    Column("system_id", Id, primary_key=True),
    Column("system_name", String(100), nullable=False),
    Column("role", String(16), nullable=False),  # source | target
    Column("read", Integer, nullable=False, server_default="0"),
    Column("skipped", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("created", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("deleted", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
)

job_partitions = Table(
    "job_partitions",
    metadata,
    TenantColumn(),
    # One partition of a job's full read (a key range or run of pages of the source), run as
    # its own task by any worker (jobs/partitions.py, decision 0032); committed page by page.
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_type", String(32), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("bounds", Text, nullable=False),  # JSON: what the source connector reads
    Column("status", String(16), nullable=False),  # queued, running, done, failed, stopped
    Column("done", Integer, nullable=False, server_default="0"),  # entities committed
    Column("read", Integer, nullable=False, server_default="0"),  # entities read to its end
    Column("newest", Text, nullable=True),  # the delta token of its last page
    Column("source_failed", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),  # some entity failed
    Column("fatal", Text, nullable=False, server_default="{}"),  # target id -> why it stopped
    Column("error", Text, nullable=True),
    Column("worker", String(255), nullable=True),
)

job_entities = Table(
    "job_entities",
    metadata,
    TenantColumn(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("action", String(16), nullable=False),  # failed, skipped, created, updated, deleted
    Column("entity_type", String(32), nullable=False),
    Column("system_id", Id, nullable=False),
    Column("system_name", String(100), nullable=False),
    Column("entity_id", Text, nullable=False),  # in the source (or its label, read failed)
    Column("reason", Text, nullable=True),
    Column("content", Text, nullable=True),  # only when the ips.trace.* properties ask for it
    Column("created", Time, nullable=False),
    Column("name", Text, nullable=True),  # userName / displayName, when the job knew it
    Column("target_entity_id", Text, nullable=True),  # the entity's id in a target
    # The identity timeline finds a person's entries by source id or name, newest first.
    Index("ix_job_entities_tenant_entity_id", "tenant", "entity_id", "id"),
    Index("ix_job_entities_tenant_name", "tenant", "name", "id"),
    # A job's logs of some actions (failed, created...), found and counted in the index alone
    Index("ix_job_entities_job_id_action_tenant", "job_id", "action", "tenant"),
)

job_runners = Table(
    "job_runners",
    metadata,
    # The processes running jobs (a server's executor, provisor worker), each beating now and
    # then: a queued job with no runner beating waits for nothing.
    Column("name", String(255), primary_key=True),  # host:pid
    Column("started", Time, nullable=False),
    Column("heartbeat", Time, nullable=False, index=True),
)

operational_data = Table(
    "operational_data",
    metadata,
    TenantColumn(),
    Column("source_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("target_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_type", String(32), primary_key=True),
    Column("source_entity_id", String(512), primary_key=True),
    Column("target_entity_id", String(512), nullable=False),
    Column("hash", String(64), nullable=False),  # SHA-256 of what was written
    # SHA-256 of the source entity as read and of both systems' configuration, when written:
    # the same again means nothing to do (no transformation needed).
    Column("source_hash", String(64), nullable=True),
    Column("existed_before", Integer, nullable=False),
    Column("last_seen", Id, nullable=False),  # chain id of the last job that saw it
    Column("created", Time, nullable=False),
    Column("modified", Time, nullable=False),
    Index("ix_operational_data_seen", "source_id", "target_id", "entity_type", "last_seen"),
)

write_intents = Table(
    "write_intents",
    metadata,
    TenantColumn(),
    # A create about to be sent to a target, recorded before the write and removed with the
    # page's operational data: one left behind is a write a crash may have done (exactly once).
    Column("source_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("target_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_type", String(32), primary_key=True),
    Column("source_entity_id", String(512), primary_key=True),
    Column("operation", String(16), nullable=False),  # "create"
    Column("job_id", Id, nullable=False),  # the job that recorded it
    Column("created", Time, nullable=False),
)

source_state = Table(
    "source_state",
    metadata,
    TenantColumn(),
    Column("source_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_type", String(32), primary_key=True),
    Column("delta_token", Text, nullable=True),
    Column("deltas_since_full", Integer, nullable=False, server_default="0"),
    Column("last_full_count", Integer, nullable=True),  # entities the last full read returned
)

deletion_holds = Table(
    "deletion_holds",
    metadata,
    TenantColumn(),
    # Deletions a full read wanted in a target and did not do (an empty read, a threshold):
    # held on every run until an administrator confirms them; a confirmation is spent once.
    Column("source_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("target_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_type", String(32), primary_key=True),
    Column("reason", String(16), nullable=False),  # empty | threshold
    Column("count", Integer, nullable=False),  # deletions held back
    Column("read", Integer, nullable=False),  # entities the held full read returned
    Column("last_full_count", Integer, nullable=True),  # the last complete full read's
    Column("threshold", Integer, nullable=True),  # ips.delete.threshold.* when it held
    Column("job_id", Id, nullable=False),  # the job that held them last
    Column("held", Time, nullable=False),
    Column("confirmed_by", String(255), nullable=True),
    Column("confirmed", Time, nullable=True),
)

schedules = Table(
    "schedules",
    metadata,
    TenantColumn(),
    Column("source_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("enabled", Integer, nullable=False),
    Column("spec", Text, nullable=False),  # JSON: {"intervalMinutes": 40} or days/time/timeZone
    Column("next_run", Time, nullable=True, index=True),
    Column("last_run", Time, nullable=True),
)

tenant_settings = Table(
    "tenant_settings",
    metadata,
    TenantColumn(primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- real-time provisioning ---------------------------------------------------------------------

realtime_logs = Table(
    "realtime_logs",
    metadata,
    TenantColumn(),
    Column("id", Id, primary_key=True),
    Column("source_id", Id, nullable=False),
    Column("source_name", String(100), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(512), nullable=True),  # the source's id (None: not read)
    Column("operation", String(16), nullable=False),  # CREATE, UPDATE, PATCH, DELETE
    Column("status", String(32), nullable=False),  # Finished Successfully | Finished with Error
    Column("started", Time, nullable=False, index=True),
    Column("duration_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("caller", String(255), nullable=False),
    Column("systems", Text, nullable=False),  # JSON: per system, operation, state, reason
    Column("entity_name", String(255), nullable=True),  # userName / displayName, when read
    Index("ix_realtime_logs_source_entity", "source_id", "entity_id"),
    Index("ix_realtime_logs_tenant_entity_name", "tenant", "entity_name"),
    Index("ix_realtime_logs_tenant_entity", "tenant", "entity_id", "started"),
    # A tenant's newest logs in order (else a tenant-led index above wins: read all, sort)
    Index("ix_realtime_logs_tenant_started", "tenant", "started"),
)

proxy_activity = Table(
    "proxy_activity",
    metadata,
    TenantColumn(),
    # One call of a proxy system's SCIM API, written in batches off the request's path; old
    # ones go with the job logs (the tenant's log retention).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Time, nullable=False),
    Column("system_id", Id, nullable=False),
    Column("operation", String(16), nullable=False),  # search, get, create, replace, ...
    Column("endpoint", String(32), nullable=False),  # Users, Groups, Schemas...
    Column("entity_id", String(512), nullable=True),
    Column("status", Integer, nullable=False),  # the HTTP status answered
    Column("duration_us", Integer, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("caller", String(255), nullable=False),
    Index("ix_proxy_activity_time", "tenant", "time"),
    Index("ix_proxy_activity_system", "tenant", "system_id", "time"),
    Index("ix_proxy_activity_entity", "tenant", "entity_id"),
)

echoes = Table(
    "echoes",
    metadata,
    TenantColumn(primary_key=True),
    # What provisor last wrote into an entity of a back-end that is also a source: a change
    # reported back with exactly this state is provisor's own (loop prevention, spec §6.4).
    Column("endpoint", String(64), primary_key=True),  # SHA-256 of the back-end's address
    Column("entity_type", String(32), primary_key=True),
    Column("entity_id", String(512), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # SHA-256; "deleted" after a delete
    Column("attributes", Text, nullable=True),  # JSON names, when only what was sent is known
    Column("written", Time, nullable=False),
)

# --- certificates -------------------------------------------------------------------------------

certificate_authority = Table(
    "certificate_authority",
    metadata,
    TenantColumn(primary_key=True),
    Column("id", String(16), primary_key=True),  # "tenant"
    Column("certificate", Text, nullable=False),  # PEM
    Column("private_key", Text, nullable=False),  # PEM, Fernet-encrypted
    Column("created", Time, nullable=False),
)

outbound_certificates = Table(
    "outbound_certificates",
    metadata,
    TenantColumn(),
    Column("fingerprint", String(64), primary_key=True),  # SHA-256 of the DER, hex
    Column(
        "system_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("certificate", Text, nullable=False),  # PEM
    Column("private_key", Text, nullable=False),  # PEM, Fernet-encrypted
    Column("active", Integer, nullable=False),
    Column("created", Time, nullable=False),
)

outbound_settings = Table(
    "outbound_settings",
    metadata,
    TenantColumn(),
    Column("system_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("auto_regenerate", Integer, nullable=False),
)

certificate_events = Table(
    "certificate_events",
    metadata,
    TenantColumn(),
    # Expiry notices and renewals of outbound certificates, once each: what notifications read.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "system_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("fingerprint", String(64), nullable=False),
    Column("kind", String(32), nullable=False),  # expiring-30|-14|-3, expired, renewed
    Column("subject", Text, nullable=False),  # SAP's mail subject
    Column("detail", Text, nullable=False),
    Column("created", Time, nullable=False, index=True),
    UniqueConstraint("fingerprint", "kind"),
)

inbound_certificates = Table(
    "inbound_certificates",
    metadata,
    TenantColumn(primary_key=True),
    # A caller's certificate (never its key): one identity each, a technical user or a system.
    Column("fingerprint", String(64), primary_key=True),
    Column(
        "client_id", Id, ForeignKey("clients.id", ondelete="CASCADE"), nullable=True, index=True
    ),
    Column(
        "system_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), nullable=True, index=True
    ),
    Column("certificate", Text, nullable=False),  # PEM
    Column("subject", String(1024), nullable=False, index=True),  # RFC 4514
    Column("issuer", String(1024), nullable=False),
    Column("generated", Integer, nullable=False),
    Column("created", Time, nullable=False),
)

revoked_certificates = Table(
    "revoked_certificates",
    metadata,
    TenantColumn(primary_key=True),
    # Inbound certificates deleted (so revoked): refused even where another attached
    # certificate of the same subject and CA would vouch for them. Never emptied.
    Column("fingerprint", String(64), primary_key=True),
    Column("subject", String(1024), nullable=False),  # RFC 4514, for the record
    Column("issuer", String(1024), nullable=False),
    Column("serial_number", String(64), nullable=False),  # hex
    Column("revoked", Time, nullable=False),
)

# --- audit ----------------------------------------------------------------------------------------

audit_log = Table(
    "audit_log",
    metadata,
    # What an actor changed, written in the same transaction as the change; append-only, each
    # tenant's records one hash chain (storage/auditchain.py).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Time, nullable=False, index=True),
    Column("tenant", String(64), nullable=False),
    Column("actor_kind", String(16), nullable=False),  # client | administrator | system
    Column("actor", String(255), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),  # e.g. system.update
    Column("target", String(255), nullable=False),  # what it acted on, e.g. a system id
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON, never a secret
    Column("seq", Integer, nullable=False, server_default="0"),  # place in the tenant's chain
    Column("address", String(64), nullable=False, server_default=""),  # the client's
    Column("prev_hash", String(64), nullable=False, server_default=""),
    Column("hash", String(64), nullable=False, server_default=""),  # SHA-256, hex
    Index("ix_audit_log_tenant_id", "tenant", "id"),
    Index("ix_audit_log_tenant_action_id", "tenant", "action", "id"),
    Index("ix_audit_log_tenant_actor_id", "tenant", "actor", "id"),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    # The head of a tenant's audit chain, locked while a record is appended; the anchor is the
    # last record the retention purge deleted (the first one kept follows it).
    TenantColumn(primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("anchor_seq", Integer, nullable=False),
    Column("anchor_hash", String(64), nullable=False),
)


# --- administrators: the people who use the console ----------------------------------------

administrators = Table(
    "administrators",
    metadata,
    TenantColumn(),
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),  # the login name, as written
    Column("name_key", String(255), nullable=False),  # casefolded: unique per tenant
    Column("role", String(16), nullable=False),  # administrator | viewer | operator
    Column("origin", String(8), nullable=False),  # local | sso
    Column("subject", String(512), nullable=True),  # sso: "<issuer> <sub>"
    Column("password_hash", Text, nullable=True),  # Argon2id; none for sso administrators
    Column("totp_secret", Text, nullable=True),  # encrypted; set once confirmed
    Column("totp_pending", Text, nullable=True),  # encrypted; during enrolment
    Column("totp_last_step", Integer, nullable=True),  # a code is accepted once
    Column("created", Time, nullable=False),
    Column("last_login", Time, nullable=True),
    UniqueConstraint("name_key", "tenant"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    TenantColumn(),
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie's token, hex
    Column(
        "administrator_id",
        Id,
        ForeignKey("administrators.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("csrf", String(64), nullable=False),
    Column("method", String(16), nullable=False),  # password | totp | sso
    Column("created", Time, nullable=False),
    Column("last_seen", Time, nullable=False),
    Column("expires", Time, nullable=False),  # the absolute timeout
)

console_sso = Table(
    "console_sso",
    metadata,
    # A tenant's OpenID Connect provider for console sign-in (one per tenant).
    TenantColumn(primary_key=True),
    Column("label", String(64), nullable=False),  # the login button's "Sign in with <label>"
    Column("issuer", Text, nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("client_secret", Text, nullable=False),  # encrypted
    Column("role_claim", String(255), nullable=False),
    Column("administrator_values", Text, nullable=False),  # JSON list
    Column("viewer_values", Text, nullable=False),  # JSON list
    Column("scopes", String(255), nullable=False),
    Column("updated", Time, nullable=False),
)

# --- notifications ----------------------------------------------------------------------------

notification_subscriptions = Table(
    "notification_subscriptions",
    metadata,
    TenantColumn(),
    # Who is told of what: a source system's jobs, a system's (or every system's) outbound
    # certificates, the tenant's failed-login bursts; by e-mail or webhook.
    Column("id", Id, primary_key=True),
    Column("topic", String(16), nullable=False),  # job | certificate | login
    Column(
        "system_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), nullable=True, index=True
    ),
    Column("channel", String(16), nullable=False),  # email | webhook
    Column("name", String(255), nullable=False),  # the recipient's display name
    Column("address", String(2048), nullable=False),  # an e-mail address or a webhook URL
    Column("secret", Text, nullable=True),  # a webhook's HMAC secret, encrypted
    Column("created", Time, nullable=False),
    Column("created_by", String(255), nullable=False),
    Index("ix_notification_subscriptions_topic", "tenant", "topic"),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    TenantColumn(),
    # The outbox: one message to one subscriber, written with the event where possible,
    # delivered (and retried) by the jobs process. ``key`` makes an event's message unique.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False),
    Column(
        "subscription_id",
        Id,
        ForeignKey("notification_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("event", String(48), nullable=False),
    Column("subject", Text, nullable=False),
    Column("payload", Text, nullable=False),  # JSON: what the message says
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", Time, nullable=True),
    Column("claimed_until", Time, nullable=True),  # a delivery loop is sending it
    Column("created", Time, nullable=False),
    Column("delivered", Time, nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("tenant", "key"),
    Index("ix_notification_deliveries_due", "status", "next_attempt"),
    Index("ix_notification_deliveries_created", "tenant", "created"),
)

notification_attempts = Table(
    "notification_attempts",
    metadata,
    TenantColumn(),
    # One try of a delivery: when, how, and what went wrong.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", Time, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # delivered | error
    Column("error", Text, nullable=True),
)

job_notification_state = Table(
    "job_notification_state",
    metadata,
    TenantColumn(),
    # A source system's run of failed READ/RESYNC jobs (SAP's notification rules).
    Column("source_id", Id, ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True),
    Column("failures", Integer, nullable=False),  # consecutive failed jobs
    Column("notified", Integer, nullable=False),  # a failure of this run was notified
)

TENANT_TABLES = tuple(table for table in metadata.sorted_tables if "tenant" in table.c)
"""The tables holding tenants' rows, parents before children (delete in reverse)."""
