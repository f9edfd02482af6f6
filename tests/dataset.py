"""Rows in every table of a tenant's data, as provisor writes them: for the tests of the tenant
upgrade (revision 0013 to head) and of the storage isolation (row-level security).

The rows carry no ``tenant``: a test adds it where its schema has the column. ``tenant_rows(tag)``
gives each call its own ids and generated certificates, and the same natural keys (userName,
system names, settings, counters...) in every call: two tenants' copies fit one database only
where uniqueness is per tenant.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from provisor.certs import x509 as certs

Rows = dict[str, list[dict[str, Any]]]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
BADGE = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Badge"
SOURCE_NAME = "HR"  # the source system's name
USER_NAME = "ada.lovelace"  # the first user's userName
_NAMESPACE = uuid.UUID("6f1c1a52-3f0e-4f0c-9a55-2c1d5a0b7e11")
_CIPHER = Fernet(Fernet.generate_key())  # a master key's: private keys are stored encrypted


def _at(day: int, hour: int = 8) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:15:00.000000Z"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@cache
def _authority() -> tuple[Any, Any]:
    """A tenant CA (certificate, key): issued once, its certificates differ per call."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return certs.make_ca(certs.name("provisor tenant CA"), key, hashes.SHA256(), start, 3650), key


@cache
def _issued(subject: str) -> tuple[str, str, str, str]:
    """A certificate the CA issued to ``subject``: PEM, encrypted key, fingerprint, serial."""
    ca, ca_key = _authority()
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime(2026, 11, 2, tzinfo=UTC)
    cert = certs.issue(ca, ca_key, certs.name(subject), key, hashes.SHA256(), start, 365)
    encrypted = _CIPHER.encrypt(certs.key_pem(key).encode()).decode()
    return certs.pem(cert), encrypted, certs.fingerprint(cert), f"{cert.serial_number:x}"


def tenant_rows(tag: str) -> Rows:
    """One tenant's data in every table that holds it, parents before children (ids and
    outbound certificates are ``tag``'s own)."""

    def new_id(name: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{tag}/{name}"))

    client, user, grace, group = new_id("client"), new_id("ada"), new_id("grace"), new_id("eng")
    source, target, job = new_id("hr"), new_id("directory"), new_id("job")
    chain, realtime = new_id("chain"), new_id("realtime")
    delivery = 10_000_000 + uuid.uuid5(_NAMESPACE, f"{tag}/delivery").int % 1_000_000
    ca, ca_key = _authority()
    outbound_pem, outbound_key, outbound_fp, _ = _issued(f"{tag}: Directory")
    inbound_pem, _, inbound_fp, _ = _issued("hr-sync")  # the same caller in every tenant
    _, _, revoked_fp, revoked_serial = _issued("old-hr-sync")
    ada = {
        "schemas": [USER_SCHEMA],
        "id": user,
        "userName": USER_NAME,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "displayName": "Ada Lovelace",
        "emails": [{"value": "ada@example.org", "type": "work", "primary": True}],
        "externalId": "E1815",
        "active": True,
    }
    badge = {"badgeNumber": "B-17", "floor": 3}
    grace_doc = {"schemas": [USER_SCHEMA, BADGE], "id": grace, "userName": "grace", BADGE: badge}
    badge_schema = {
        "id": BADGE,
        "name": "Badge",
        "description": "Building access",
        "attributes": [
            {"name": "badgeNumber", "type": "string", "uniqueness": "server", "caseExact": True},
            {"name": "floor", "type": "integer"},
        ],
    }
    write = {"user": {"mappings": [{"sourcePath": "$.userName", "targetPath": "$.userName"}]}}
    statistics = {"read": 2, "skipped": 0, "failed": 0, "updated": 0, "deleted": 0}
    return {
        "clients": [
            {
                "id": client,
                "name": "hr-sync",
                "description": "The HR feed's technical user",
                "permissions": "manage_users manage_groups",
                "created": _at(1),
            }
        ],
        "client_secrets": [
            {
                "id": new_id("secret"),
                "client_id": client,
                "secret_hash": "$argon2id$v=19$m=65536,t=3,p=4$M+YadqgVp7PosykpCg2abA$"
                "M998+iscK1mAQP2sd8L6vjuj1RHqUlY4k03Z35Le2pY",
                "created": _at(1),
                "expires": _at(30),
            }
        ],
        "users": [
            {
                "id": user,
                "user_name": USER_NAME,
                "user_name_key": USER_NAME,
                "external_id": "E1815",
                "display_name": "Ada Lovelace",
                "display_name_key": "ada lovelace",
                "created": _at(3),
                "last_modified": _at(4),
                "version": 2,
                "doc": _json(ada),
                "password_hash": None,
            },
            {
                "id": grace,
                "user_name": "grace",
                "user_name_key": "grace",
                "external_id": None,
                "display_name": None,
                "display_name_key": None,
                "created": _at(3),
                "last_modified": _at(3),
                "version": 1,
                "doc": _json(grace_doc),
                "password_hash": None,
            },
        ],
        "user_emails": [{"user_id": user, "value_key": "ada@example.org"}],
        "groups": [
            {
                "id": group,
                "display_name": "Engineers",
                "display_name_key": "engineers",
                "external_id": "G-ENG",
                "created": _at(4),
                "last_modified": _at(4),
                "version": 1,
                "doc": _json({"schemas": [GROUP_SCHEMA], "id": group, "displayName": "Engineers"}),
            }
        ],
        "group_members": [
            {"group_id": group, "member_id": user, "member_type": "User", "display": "Ada"},
            {"group_id": group, "member_id": grace, "member_type": "User", "display": None},
        ],
        "unique_values": [
            {"scope": "User:emails", "value_key": "ada@example.org", "resource_id": user},
            {"scope": f"User:{BADGE}:badgeNumber", "value_key": "B-17", "resource_id": grace},
        ],
        "custom_schemas": [
            {
                "id": BADGE,
                "resource_type": "User",
                "doc": _json(badge_schema),
                "created": _at(2),
            }
        ],
        "counters": [
            {"name": "custom_schemas", "value": 1},
            {"name": "inbound_certificates", "value": 2},
        ],
        "systems": [
            {
                "id": source,
                "name": SOURCE_NAME,
                "name_key": SOURCE_NAME.casefold(),
                "description": "Workday, through its SCIM API",
                "type": "scim",
                "role": "source",
                "enabled": 1,
                "origin": "CUSTOMER_MANAGED",
                "version": 3,
                "created": _at(5),
                "last_modified": _at(6),
            },
            {
                "id": target,
                "name": "Directory",
                "name_key": "directory",
                "description": "",
                "type": "local-identity-directory",
                "role": "target",
                "enabled": 1,
                "origin": "CUSTOMER_MANAGED",
                "version": 1,
                "created": _at(5),
                "last_modified": _at(5),
            },
        ],
        "system_properties": [
            {
                "system_id": source,
                "key": "URL",
                "value": "https://hr.example.org/scim",
                "credential": 0,
            },
            {
                "system_id": source,
                "key": "Authentication",
                "value": "BasicAuthentication",
                "credential": 0,
            },
            {"system_id": source, "key": "User", "value": "provisor", "credential": 0},
            {
                "system_id": source,
                "key": "Password",
                "value": _CIPHER.encrypt(b"s3cret!").decode(),
                "credential": 1,
            },
        ],
        "system_sources": [{"target_id": target, "source_id": source}],
        "transformation_versions": [
            {
                "system_id": target,
                "kind": "write",
                "version": 1,
                "text": _json(write),
                "description": "Initial",
                "author": "admin",
                "created": _at(5),
            },
            {
                "system_id": target,
                "kind": "write",
                "version": 2,
                "text": _json(write),
                "description": "userName only",
                "author": "admin",
                "created": _at(6),
            },
        ],
        "jobs": [
            {
                "id": job,
                "source_id": source,
                "source_name": SOURCE_NAME,
                "type": "READ",
                "trigger": "REPEAT",
                "triggered_by": "Schedule",
                "status": "Finished with Error",
                "read_mode": "Full Read",
                "created": _at(7),
                "started": _at(7),
                "ended": _at(7, 9),
                "heartbeat": _at(7, 9),
                "error": None,
                "outcome": "1 entity failed",
                "stop_requested": 0,
                "resumed_from": None,
                "chain_id": chain,
                "checkpoint": _json({"user": 2}),
                "options": _json({"trace": False}),
                "worker": "node-1:4242",
            }
        ],
        "job_statistics": [
            {
                "job_id": job,
                "entity_type": "user",
                "system_id": source,
                "system_name": SOURCE_NAME,
                "role": "source",
                **statistics,
                "created": 0,
                "unchanged": 0,
            },
            {
                "job_id": job,
                "entity_type": "user",
                "system_id": target,
                "system_name": "Directory",
                "role": "target",
                **statistics,
                "read": 0,
                "failed": 1,
                "created": 1,
                "unchanged": 0,
            },
        ],
        "job_partitions": [
            {
                "job_id": job,
                "entity_type": "user",
                "number": 0,
                "bounds": orjson.dumps({"from": None, "to": None}).decode(),
                "status": "done",
                "done": 1,
                "read": 1,
                "worker": "host:1",
            }
        ],
        "job_entities": [
            {
                "job_id": job,
                "action": "created",
                "entity_type": "user",
                "system_id": target,
                "system_name": "Directory",
                "entity_id": "1001",
                "reason": None,
                "content": None,
                "created": _at(7, 9),
                "name": USER_NAME,
                "target_entity_id": user,
            },
            {
                "job_id": job,
                "action": "failed",
                "entity_type": "user",
                "system_id": target,
                "system_name": "Directory",
                "entity_id": "1002",
                "reason": "userName is required",
                "content": None,
                "created": _at(7, 9),
                "name": None,
                "target_entity_id": None,
            },
        ],
        "operational_data": [
            {
                "source_id": source,
                "target_id": target,
                "entity_type": "user",
                "source_entity_id": "1001",
                "target_entity_id": user,
                "hash": hashlib.sha256(b"written").hexdigest(),
                "source_hash": hashlib.sha256(b"read").hexdigest(),
                "existed_before": 0,
                "last_seen": chain,
                "created": _at(7, 9),
                "modified": _at(7, 9),
            }
        ],
        "write_intents": [
            {
                "source_id": source,
                "target_id": target,
                "entity_type": "user",
                "source_entity_id": "1003",
                "operation": "create",
                "job_id": job,
                "created": _at(7, 9),
            }
        ],
        "source_state": [
            {
                "source_id": source,
                "entity_type": "user",
                "delta_token": "W/2026-11-07T09:15:00Z",
                "deltas_since_full": 0,
                "last_full_count": 3,
            }
        ],
        "deletion_holds": [
            {
                "source_id": source,
                "target_id": target,
                "entity_type": "group",
                "reason": "empty",
                "count": 4,
                "read": 0,
                "last_full_count": 4,
                "threshold": None,
                "job_id": job,
                "held": _at(7, 9),
                "confirmed_by": None,
                "confirmed": None,
            }
        ],
        "schedules": [
            {
                "source_id": source,
                "enabled": 1,
                "spec": _json({"intervalMinutes": 40}),
                "next_run": _at(7, 10),
                "last_run": _at(7),
            }
        ],
        "tenant_settings": [{"key": "log_retention_days", "value": "30"}],
        "realtime_logs": [
            {
                "id": realtime,
                "source_id": source,
                "source_name": SOURCE_NAME,
                "entity_type": "user",
                "entity_id": "1001",
                "operation": "PATCH",
                "status": "Finished Successfully",
                "started": _at(8),
                "duration_ms": 42,
                "error": None,
                "caller": "hr-sync",
                "systems": _json(
                    [
                        {
                            "systemId": target,
                            "systemName": "Directory",
                            "role": "target",
                            "operation": "UPDATE",
                            "state": "Entity Updated",
                            "reason": None,
                        }
                    ]
                ),
            }
        ],
        "echoes": [
            {
                "endpoint": hashlib.sha256(b"https://hr.example.org/scim").hexdigest(),
                "entity_type": "user",
                "entity_id": "1001",
                "fingerprint": hashlib.sha256(b"state").hexdigest(),
                "attributes": _json(["userName", "emails"]),
                "written": _at(8),
            }
        ],
        "certificate_authority": [
            {
                "id": "tenant",
                "certificate": certs.pem(ca),
                "private_key": _CIPHER.encrypt(certs.key_pem(ca_key).encode()).decode(),
                "created": _at(1),
            }
        ],
        "outbound_certificates": [
            {
                "fingerprint": outbound_fp,
                "system_id": target,
                "certificate": outbound_pem,
                "private_key": outbound_key,
                "active": 1,
                "created": _at(2),
            }
        ],
        "outbound_settings": [{"system_id": target, "auto_regenerate": 1}],
        "certificate_events": [
            {
                "system_id": target,
                "fingerprint": outbound_fp,
                "kind": "expiring-30",
                "subject": "Certificate of system Directory expires in 30 days",
                "detail": f"The certificate {outbound_fp[:16]} expires on 2027-11-02.",
                "created": _at(9),
            }
        ],
        "inbound_certificates": [
            {
                "fingerprint": inbound_fp,
                "client_id": client,
                "system_id": None,
                "certificate": inbound_pem,
                "subject": "CN=hr-sync",
                "issuer": "CN=provisor tenant CA",
                "generated": 1,
                "created": _at(2),
            }
        ],
        "revoked_certificates": [
            {
                "fingerprint": revoked_fp,
                "subject": "CN=old-hr-sync",
                "issuer": "CN=provisor tenant CA",
                "serial_number": revoked_serial,
                "revoked": _at(2),
            }
        ],
        "administrators": [
            {
                "id": new_id("admin"),
                "name": "Ada Admin",
                "name_key": "ada admin",
                "role": "administrator",
                "origin": "local",
                "subject": None,
                "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                "totp_secret": None,
                "totp_pending": None,
                "totp_last_step": None,
                "created": _at(1),
                "last_login": _at(9),
            }
        ],
        "console_sessions": [
            {
                "id": uuid.uuid5(_NAMESPACE, f"{tag}/session").hex * 2,
                "administrator_id": new_id("admin"),
                "csrf": "csrf-token",
                "method": "password",
                "created": _at(9),
                "last_seen": _at(9, 9),
                "expires": _at(9, 20),
            }
        ],
        "console_sso": [
            {
                "label": "Corporate IdP",
                "issuer": "https://idp.example.org",
                "client_id": "provisor-console",
                "client_secret": _CIPHER.encrypt(b"sso-secret").decode(),
                "role_claim": "groups",
                "administrator_values": _json(["provisor-admins"]),
                "viewer_values": _json(["provisor-viewers"]),
                "scopes": "openid profile email",
                "updated": _at(3),
            }
        ],
        "proxy_activity": [
            {
                "time": _at(9, 10),
                "system_id": target,
                "operation": "get",
                "endpoint": "Users",
                "entity_id": user,
                "status": 200,
                "duration_us": 1800,
                "request_id": uuid.uuid5(_NAMESPACE, f"{tag}/proxy").hex,
                "caller": "hr-sync",
            }
        ],
        "notification_subscriptions": [
            {
                "id": new_id("subscription"),
                "topic": "job",
                "system_id": source,
                "channel": "webhook",
                "name": "Alerting",
                "address": "https://alerts.example.org/provisor",
                "secret": _CIPHER.encrypt(b"webhook-secret-of-the-tenant").decode(),
                "created": _at(3),
                "created_by": "initial-admin",
            }
        ],
        "notification_deliveries": [
            {
                "id": delivery,
                "key": f"job.finished_with_error:{job}:{new_id('subscription')}",
                "subscription_id": new_id("subscription"),
                "event": "job.finished_with_error",
                "subject": f"Provisioning Finished with Error. Source System: {SOURCE_NAME}",
                "payload": _json({"jobId": job, "sourceSystemName": SOURCE_NAME}),
                "status": "pending",
                "attempts": 1,
                "next_attempt": _at(9, 10),
                "claimed_until": None,
                "created": _at(9, 9),
                "delivered": None,
                "last_error": "HTTP 503: unavailable",
            }
        ],
        "notification_attempts": [
            {
                "delivery_id": delivery,
                "at": _at(9, 9),
                "channel": "webhook",
                "status": "error",
                "error": "HTTP 503: unavailable",
            }
        ],
        "job_notification_state": [{"source_id": source, "failures": 1, "notified": 1}],
        "audit_log": [
            {
                "at": _at(5),
                "actor_kind": "client",
                "actor": "initial-admin",
                "request_id": uuid.uuid5(_NAMESPACE, f"{tag}/request").hex,
                "action": "system.create",
                "target": source,
                "detail": _json({"name": SOURCE_NAME, "type": "scim", "credentials": ["Password"]}),
            }
        ],
        "audit_heads": [
            {"seq": 1, "hash": "ab" * 32, "anchor_seq": 0, "anchor_hash": ""},
        ],
    }


def ids(rows: Rows) -> dict[str, str]:
    """The ids a test reads back: the first user, the group, the source system."""
    return {
        "user": rows["users"][0]["id"],
        "group": rows["groups"][0]["id"],
        "source": rows["systems"][0]["id"],
    }


INSTALLATION_ROWS: Rows = {
    "job_runners": [{"name": "node-1:4242", "started": _at(7), "heartbeat": _at(7, 9)}]
}
"""The installation's tables (no tenant)."""
