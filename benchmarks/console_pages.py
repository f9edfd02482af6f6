"""Benchmark of the console's pages over a big tenant: 100,000 users, 1,000 jobs, 50 systems.

``--build <folder>`` makes a data folder (SQLite, or ``--database-url`` PostgreSQL with its
master key in the folder) whose default tenant holds, as provisor writes them:

* the Local Identity Directory: ``--users`` users (realistic names, e-mails, an enterprise
  extension) and ``--groups`` groups (departments by site, projects, applications, one group
  of every employee, a few groups of groups) with their members; a custom schema;
* 50 systems made through the systems service: 12 sources of every connector type, 35
  targets linked to them, 3 proxies; later versions of some transformations; a disabled
  schedule per source; outbound certificates of some systems and inbound ones of
  technical users (through the certificates service);
* ``--jobs`` finished jobs of the sources over the last four weeks (READ full and delta,
  RESYNC, SIMULATE; scheduled and started by hand; succeeded, failed, stopped), each with
  its statistics per system and its entity logs (every entity created, updated, deleted,
  failed or skipped, failures and skips with reasons), the operational data and source
  state the jobs left; real-time logs and proxy calls.

The big tables are written by bulk inserts (SQLAlchemy Core on the real tables, large
transactions); a folder is built once and timed many times.

``--data <folder>`` signs an administrator in and requests every console page (each GET route
of the console's routers, parameters filled with the dataset's ids, with its searches and
filters) ``--repeat`` times, in process through ``provisor.asgi.create_app`` and with
``--live`` also through a ``provisor serve`` on loopback; it prints the median and p90 of the
``Server-Timing`` each page reports (and the request's CPU time in process), marks the pages
over 100 ms, and with ``--profile`` writes a cProfile of each of them:

    python3 benchmarks/console_pages.py --build /tmp/console-bench
    python3 benchmarks/console_pages.py --data /tmp/console-bench --live --json out.json
    python3 benchmarks/console_pages.py --build /tmp/console-bench-pg \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/console_bench
    python3 benchmarks/console_pages.py --build /tmp/small --users 2000 --jobs 60
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from fastapi.routing import APIRoute  # noqa: E402
from sqlalchemy import Table, func, insert, select  # noqa: E402

from provisor.context import DEFAULT_TENANT, Context  # noqa: E402
from provisor.jobs.ledger import HIDDEN  # noqa: E402
from provisor.jobs.model import JobStatus, JobType, ReadMode, Trigger  # noqa: E402
from provisor.logs import configure as configure_logs  # noqa: E402
from provisor.storage import tables as t  # noqa: E402
from provisor.storage.database import Transaction  # noqa: E402

MANIFEST = "console-bench.json"  # in the data folder: the database, sizes and sample ids
TENANT = DEFAULT_TENANT
DAYS = 28  # jobs and real-time logs of the last four weeks (within the longest retention)
BATCH = 20_000  # rows per executemany
PAGE = 100  # entities a job reads and writes at once
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BADGE = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Badge"

FIRST = (
    "Ada Adrian Aisha Akira Alejandro Alice Amara Amelia Ana Andrea Andrei Anna Anton Aria "
    "Arjun Astrid Ayumi Beatriz Benjamin Bianca Bruno Camille Carlos Carmen Charlotte Chen "
    "Chiara Chloe Clara Daniel Daria David Diego Dmitri Elena Elif Elijah Elin Emil Emily "
    "Emma Erik Ethan Eva Fatima Felix Fernanda Finn Francesca Freya Gabriel Giulia Grace Hana "
    "Hannah Hassan Helena Henrik Hugo Ibrahim Ines Ingrid Isabel Ivan Jakob James Jana Javier "
    "Jin Joao Johanna Jonas Jose Julia Kai Karim Kenji Klara Lars Laura Layla Lea Leon Lina "
    "Lucas Lucia Luis Lukas Maja Malik Marco Maria Mateo Matteo Maya Mei Mia Mikael Min Mohammed "
    "Nadia Naomi Nikolai Nina Noah Nora Olga Oliver Olivia Omar Oscar Paula Pedro Petra Priya "
    "Rafael Ravi Rosa Ruth Sakura Samuel Sara Sebastian Sofia Sophie Stefan Sven Tariq Thomas "
    "Tomas Valentina Victor Wei William Xin Yara Yusuf Zara Zoe"
).split()
LAST = (
    "Abbott Acosta Adler Ahmed Alvarez Andersen Bauer Becker Berg Bianchi Brandt Braun Brown "
    "Carter Castro Chang Chen Costa Cruz Dahl Davies Dubois Eriksson Evans Fischer Fontaine "
    "Garcia Gomez Gonzalez Graham Gruber Gupta Hahn Hansen Hartmann Hoffmann Horvat Huber "
    "Ibrahim Ito Jansen Jensen Johansson Jones Kaiser Kato Keller Khan Kim Klein Koch Kowalski "
    "Kramer Kumar Lambert Larsen Laurent Lee Lehmann Li Lindqvist Lopez Ludwig Maier Martin "
    "Martinez Meyer Moreau Morales Muller Murphy Nakamura Nguyen Nielsen Novak Olsen Ortiz "
    "Park Patel Perez Peters Petrov Popescu Ramirez Reyes Richter Rossi Russo Sanchez Santos "
    "Sato Schmidt Schneider Schulz Schwarz Silva Singh Smith Sorensen Suzuki Tanaka Taylor "
    "Thomas Torres Vargas Vogel Wagner Walker Wang Weber Wolf Wong Yamamoto Yilmaz Young Zhang "
    "Zimmermann"
).split()
DEPARTMENTS = (
    "Finance Sales Marketing Engineering Support Legal HR Procurement Logistics Research "
    "Operations Security Facilities Quality Design Product Training Audit Treasury Strategy"
).split()
SITES = ("Berlin", "Madrid", "Boston", "Singapore", "Toronto")
TITLES = (
    "Analyst",
    "Senior Analyst",
    "Engineer",
    "Senior Engineer",
    "Manager",
    "Director",
    "Specialist",
    "Consultant",
    "Coordinator",
    "Assistant",
)
APPS = (
    "salesforce servicenow slack jira confluence github zoom miro workday concur "
    "tableau figma okta sap-s4 sap-ariba sap-successfactors aws-console azure-portal gitlab "
    "datadog pagerduty notion asana dropbox box docusign adobe-cc autocad matlab vpn"
).split()
PROJECTS = (
    "apollo artemis atlas aurora borealis cassini comet condor delta eagle eclipse falcon "
    "gemini halcyon helios horizon hydra icarus jupiter kepler lynx mercury meridian nebula "
    "nova odyssey orion pegasus phoenix polaris pulsar quasar saturn sirius titan vega"
).split()

SKIP_REASONS = (
    "Entity condition [$.active == true] is not fulfilled",
    "Entity condition [$.emails[0].value EMPTY false] is not fulfilled",
    "Operation [delete] is skipped in target transformation",
)
FAIL_REASONS = (
    "The target answered 400 Bad Request: Attribute 'emails' has no value.",
    "The target answered 409 Conflict: A user with this userName already exists.",
    "The target answered 429 Too Many Requests (retried 3 times).",
    "Mapping 4 failed: the value of $.name.familyName is required and missing.",
    "LDAP error 19 (constraintViolation): 0000052D: password does not meet the policy.",
    "The target answered 500 Internal Server Error: upstream timeout.",
    "resolveEntityIds: the manager is not provisioned to this target.",
)


def stamp(moment: datetime) -> str:
    """provisor's stored time text (ISO 8601, UTC, microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


@cache
def _salt(name: str) -> str:
    return digest(name)[:8]


def salted(system: str, entity_id: str) -> str:
    """The id a system gave an entity (a UUID of its own, derived from the entity's)."""
    return _salt(system) + entity_id[8:]


# -- the systems -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemPlan:
    name: str
    type: str  # connector type id
    role: str  # source | target | proxy
    share: float = 0.0  # a source's part of the users (1.0: all)
    targets: tuple[str, ...] = ()  # a source's targets
    groups: bool = False  # a source that reads groups too


SOURCES = (
    SystemPlan("Workday HR", "scim", "source", 1.0, ("Directory", "Identity Authentication")),
    SystemPlan(
        "Directory Feed",
        "local-identity-directory",
        "source",
        1.0,
        ("Corporate AD", "Salesforce", "ServiceNow", "Slack"),
        groups=True,
    ),
    SystemPlan("Contractors CSV", "csv", "source", 0.02, ("Contractor Portal", "Badge System")),
    SystemPlan(
        "Partner LDAP", "ldap", "source", 0.05, ("Partner Portal", "Partner Wiki", "Partner CRM")
    ),
    SystemPlan(
        "Legacy AD",
        "microsoft-ad",
        "source",
        0.08,
        ("Identity Authentication EU", "Jira", "Confluence"),
        groups=True,
    ),
    SystemPlan(
        "SuccessFactors",
        "scim",
        "source",
        0.10,
        ("Learning Platform", "Expense Tool", "Travel Booking", "Benefits Portal"),
    ),
    SystemPlan("IAS Tenant", "identity-authentication", "source", 0.03, ("Zoom", "Miro")),
    SystemPlan(
        "Retail Stores LDAP",
        "ldap",
        "source",
        0.06,
        ("POS System", "Store Scheduling", "Retail AD", "Retail Email"),
    ),
    SystemPlan("Acquired Co. CSV", "csv", "source", 0.015, ("Acquired Co. Directory", "GitHub")),
    SystemPlan("Students SCIM", "scim", "source", 0.04, ("Canvas LMS", "Library", "Student Email")),
    SystemPlan(
        "Field Service", "scim", "source", 0.012, ("Dispatch", "Fleet App", "Safety Training")
    ),
    SystemPlan(
        "Alumni CSV", "csv", "source", 0.008, ("Alumni Portal", "Newsletter", "Alumni Events")
    ),
)
TARGET_TYPES = {
    "Directory": "local-identity-directory",
    "Identity Authentication": "identity-authentication",
    "Identity Authentication EU": "identity-authentication",
    "Corporate AD": "microsoft-ad",
    "Retail AD": "microsoft-ad",
    "Acquired Co. Directory": "ldap",
    "Badge System": "csv",
    "Library": "csv",
    "Newsletter": "csv",
}
PROXIES = (
    SystemPlan("Directory Proxy", "local-identity-directory", "proxy"),
    SystemPlan("AD Proxy", "microsoft-ad", "proxy"),
    SystemPlan("HR Proxy", "scim", "proxy"),
)
DELTA_TYPES = {"scim", "local-identity-directory", "ldap", "microsoft-ad"}


@cache
def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def properties(name: str, kind: str) -> tuple[dict[str, str | None], list[str]]:
    """Plausible properties of a system of connector type ``kind`` (and its credentials)."""
    host = f"{slug(name)}.example.com"
    if kind in ("scim", "identity-authentication"):
        return {
            "URL": f"https://{host}/scim/v2",
            "Authentication": "BasicAuthentication",
            "User": f"provisor-{slug(name)}",
            "Password": f"secret-{slug(name)}",
        }, ["Password"]
    if kind in ("ldap", "microsoft-ad"):
        return {
            "ldap.url": f"ldaps://{host}:636",
            "ldap.user": "CN=provisor,OU=Service,DC=corp,DC=example,DC=com",
            "ldap.password": f"secret-{slug(name)}",
            "ldap.user.path": "OU=People,DC=corp,DC=example,DC=com",
            "ldap.group.path": "OU=Groups,DC=corp,DC=example,DC=com",
        }, ["ldap.password"]
    if kind == "csv":
        return {"csv.user.file": f"csv/{slug(name)}-users.csv"}, []
    return {}, []


# -- people ------------------------------------------------------------------------------------


@dataclass
class Person:
    id: str
    user_name: str
    given: str
    family: str
    email: str
    department: str
    site: str


def people(n: int, rng: random.Random) -> list[Person]:
    taken: dict[str, int] = {}
    out = []
    for i in range(n):
        given, family = rng.choice(FIRST), rng.choice(LAST)
        base = f"{given}.{family}".lower()
        count = taken.get(base, 0)
        taken[base] = count + 1
        user_name = base if count == 0 else f"{base}{count + 1}"
        out.append(
            Person(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                user_name=user_name,
                given=given,
                family=family,
                email=f"{user_name}@example.com",
                department=DEPARTMENTS[i % len(DEPARTMENTS)],
                site=SITES[(i // len(DEPARTMENTS)) % len(SITES)],
            )
        )
    return out


# -- building ----------------------------------------------------------------------------------


@dataclass
class Built:
    """What the build made that the timings need."""

    systems: dict[str, str] = field(default_factory=dict)  # name -> id
    sample: dict[str, str] = field(default_factory=dict)  # kind -> id
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def bulk(
    tx: Transaction, table: Table, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]
) -> int:
    """Insert rows (each with the tenant) in batches; how many."""
    statement = insert(table)
    batch: list[dict[str, Any]] = []
    written = 0
    for row in rows:
        row["tenant"] = TENANT
        batch.append(row)
        if len(batch) >= BATCH:
            tx.execute(statement, batch)
            written += len(batch)
            batch = []
    if batch:
        tx.execute(statement, batch)
        written += len(batch)
    return written


class Builder:
    """Builds the tenant's data into an initialised installation."""

    def __init__(self, services: Any, users: int, groups: int, jobs: int, seed: int) -> None:
        self.services = services
        self.n_users = users
        self.n_groups = groups
        self.n_jobs = jobs
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.start = self.now - timedelta(days=DAYS)
        self.ctx = Context.administrator("benchmark", tenant=TENANT)
        self.built = Built()
        self.people: list[Person] = []
        self.group_ids: list[str] = []
        self.group_names: list[str] = []
        self.populations: dict[str, list[int]] = {}

    def timed(self, label: str, step: Any) -> None:
        began = time.perf_counter()
        step()
        seconds = time.perf_counter() - began
        self.built.seconds[label] = round(seconds, 2)
        print(f"  {label:<28} {seconds:7.1f} s", flush=True)

    def run(self) -> Built:
        self.timed("directory users", self.directory_users)
        self.timed("directory groups", self.directory_groups)
        self.timed("systems (services)", self.systems)
        self.timed("certificates (services)", self.certificates)
        self.timed("jobs and entity logs", self.jobs)
        self.timed("operational data", self.operational_data)
        self.timed("real-time logs", self.realtime_logs)
        self.timed("proxy activity", self.proxy_activity)
        with self.services.db.read(self.ctx) as tx:
            for table in (
                t.users,
                t.groups,
                t.group_members,
                t.systems,
                t.jobs,
                t.job_statistics,
                t.job_entities,
                t.operational_data,
                t.realtime_logs,
                t.outbound_certificates,
                t.inbound_certificates,
                *([t.proxy_activity] if hasattr(t, "proxy_activity") else []),
            ):
                query = select(func.count()).select_from(table)
                self.built.counts[table.name] = int(
                    tx.execute(tx.scoped(query, table)).scalar_one()
                )
        return self.built

    # -- the directory ------------------------------------------------------------------------

    def directory_users(self) -> None:
        self.people = people(self.n_users, self.rng)
        directory = self.services.directory
        directory.create_schema(
            self.ctx,
            {
                "id": BADGE,
                "name": "Badge",
                "description": "Building access",
                "attributes": [
                    {"name": "badgeNumber", "type": "string", "caseExact": True},
                    {"name": "floor", "type": "integer"},
                ],
            },
        )
        rng = self.rng
        span = (self.now - self.start).total_seconds() * 3  # created over twelve weeks

        def user_rows() -> Iterator[dict[str, Any]]:
            for n, p in enumerate(self.people):
                created = self.now - timedelta(seconds=rng.random() * span)
                modified = created + (self.now - created) * rng.random() ** 3
                active = rng.random() > 0.04
                schemas = [USER, ENTERPRISE]
                doc: dict[str, Any] = {
                    "schemas": schemas,
                    "id": p.id,
                    "userName": p.user_name,
                    "name": {
                        "givenName": p.given,
                        "familyName": p.family,
                        "formatted": f"{p.given} {p.family}",
                    },
                    "displayName": f"{p.given} {p.family}",
                    "emails": [{"value": p.email, "type": "work", "primary": True}],
                    "externalId": f"WD{100000 + n}",
                    "active": active,
                    "title": TITLES[n % len(TITLES)],
                    "phoneNumbers": [{"value": f"+49 30 {1000000 + n}", "type": "work"}],
                    ENTERPRISE: {
                        "employeeNumber": str(100000 + n),
                        "department": p.department,
                        "costCenter": f"CC-{p.department[:3].upper()}-{n % 40:02d}",
                        "organization": "Example Corp",
                        "division": p.site,
                    },
                }
                if n % 50 == 0:
                    schemas.append(BADGE)
                    doc[BADGE] = {"badgeNumber": f"B-{n}", "floor": n % 12}
                yield {
                    "id": p.id,
                    "user_name": p.user_name,
                    "user_name_key": p.user_name.lower(),
                    "external_id": f"WD{100000 + n}",
                    "display_name": f"{p.given} {p.family}",
                    "display_name_key": f"{p.given} {p.family}".lower(),
                    "created": stamp(created),
                    "last_modified": stamp(modified),
                    "version": 1 + int(rng.random() ** 4 * 6),
                    "doc": json_text(doc),
                    "password_hash": None,
                }

        with self.services.db.write(self.ctx) as tx:
            bulk(tx, t.users, user_rows())
            bulk(tx, t.user_emails, ({"user_id": p.id, "value_key": p.email} for p in self.people))
            bulk(
                tx,
                t.unique_values,
                (
                    {"scope": "User:emails", "value_key": p.email, "resource_id": p.id}
                    for p in self.people
                ),
            )
        self.built.sample["user"] = self.people[len(self.people) // 2].id

    def directory_groups(self) -> None:
        rng = self.rng
        people = self.people
        names = ["All Employees"]
        names += [f"{d} {s}" for s in SITES for d in DEPARTMENTS]
        names += [f"app-{a}-users" for a in APPS]
        names += [f"app-{a}-admins" for a in APPS]
        names += [f"project-{p}" for p in PROJECTS]
        n = 0
        while len(names) < self.n_groups:
            n += 1
            names.append(f"team-{PROJECTS[n % len(PROJECTS)]}-{n:03d}")
        names = names[: self.n_groups]
        stamps = {}
        ids = []
        for name in names:
            ids.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            stamps[name] = stamp(self.start - timedelta(days=rng.random() * 60))
        self.group_ids, self.group_names = ids, names
        members: dict[int, set[int]] = {i: set() for i in range(len(names))}
        members[0] = set(range(len(people)))  # All Employees
        department = {name: i for i, name in enumerate(names)}
        for u, p in enumerate(people):
            own = department.get(f"{p.department} {p.site}")
            if own is not None:
                members[own].add(u)
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                members[rng.randrange(1, len(names))].add(u)

        def group_rows() -> Iterator[dict[str, Any]]:
            for i, (gid, name) in enumerate(zip(ids, names, strict=True)):
                doc = {"schemas": [GROUP], "id": gid, "displayName": name}
                if i % 3 == 0:
                    doc["externalId"] = f"G-{i:04d}"
                yield {
                    "id": gid,
                    "display_name": name,
                    "display_name_key": name.lower(),
                    "external_id": doc.get("externalId"),
                    "created": stamps[name],
                    "last_modified": stamp(self.now - timedelta(hours=rng.random() * 24 * DAYS)),
                    "version": 1 + len(members[i]) % 7,
                    "doc": json_text(doc),
                }

        def member_rows() -> Iterator[dict[str, Any]]:
            for i, gid in enumerate(ids):
                for u in sorted(members[i]):
                    yield {
                        "group_id": gid,
                        "member_id": people[u].id,
                        "member_type": "User",
                        "display": None,
                    }
            # groups of groups: each site's departments in a site group, when there is one
            for s, site in enumerate(SITES):
                parent = len(names) - 1 - s
                if parent <= 0:
                    break
                for d in DEPARTMENTS:
                    child = department.get(f"{d} {site}")
                    if child is not None and child != parent:
                        yield {
                            "group_id": ids[parent],
                            "member_id": ids[child],
                            "member_type": "Group",
                            "display": names[child],
                        }

        with self.services.db.write(self.ctx) as tx:
            bulk(tx, t.groups, group_rows())
            bulk(tx, t.group_members, member_rows())
        sizes = sorted((len(m), i) for i, m in members.items())
        self.built.sample["group"] = ids[sizes[len(sizes) // 2][1]]
        self.built.sample["group_largest"] = ids[sizes[-1][1]]

    # -- systems (through the services) ------------------------------------------------------

    def systems(self) -> None:
        from provisor.systems.model import NewSystem

        systems = self.services.systems
        ids = self.built.systems
        for plan in SOURCES + PROXIES:
            props, secret = properties(plan.name, plan.type)
            created = systems.create(
                self.ctx,
                NewSystem.model_validate(
                    {
                        "name": plan.name,
                        "type": plan.type,
                        "role": plan.role,
                        "description": f"{plan.name}: {plan.role} of the benchmark",
                        "properties": props,
                        "credentialKeys": secret,
                    }
                ),
            )
            ids[plan.name] = created.id
        for plan in SOURCES:
            for name in plan.targets:
                kind = TARGET_TYPES.get(name, "scim")
                props, secret = properties(name, kind)
                sources = [ids[plan.name]]
                if name == "Directory":
                    sources.append(ids["SuccessFactors"])
                created = systems.create(
                    self.ctx,
                    NewSystem.model_validate(
                        {
                            "name": name,
                            "type": kind,
                            "role": "target",
                            "description": f"{name}, provisioned from {plan.name}",
                            "properties": props,
                            "credentialKeys": secret,
                            "sourceSystemIds": sources,
                        }
                    ),
                )
                ids[name] = created.id
        for n, name in enumerate(ids):
            if n % 4:
                continue
            system = systems.get(self.ctx, name)
            for kind in system.kinds:
                current = orjson.loads(systems.transformation(self.ctx, name, kind).text)
                for version in range(1, 3):
                    current.setdefault("user", {}).setdefault("mappings", []).append(
                        {
                            "sourcePath": f"$.title{version}" if kind == "read" else "$.title",
                            "targetPath": f"$.title{version}",
                            "optional": True,
                        }
                    )
                    systems.save_transformation(
                        self.ctx, name, kind, current, description=f"Map the title ({version})"
                    )
        for plan in SOURCES:
            self.services.schedules.put(
                self.ctx, plan.name, {"enabled": False, "intervalMinutes": 60}
            )
        with self.services.db.write(self.ctx) as tx:  # the 30 days a job log is kept
            tx.execute(
                insert(t.tenant_settings).values(
                    tenant=TENANT, key="log_retention_days", value="30"
                )
            )
        self.built.sample["system"] = ids["Salesforce"]
        self.built.sample["source"] = ids["Directory Feed"]

    def certificates(self) -> None:
        certificates = self.services.certificates
        names = list(self.built.systems)
        sampled = {"Salesforce", "Directory Feed"}  # the timed systems' pages show theirs
        for n, name in enumerate(names):
            if n % 3 == 0 or name in sampled:
                certificates.generate_outbound(self.ctx, name)
            if n % 12 == 0:
                certificates.generate_outbound(self.ctx, name)  # a second, inactive
        for name in ("hr-sync", "realtime-feed", "monitoring", "ci-pipeline", "helpdesk"):
            client, _ = self.services.clients.create(
                self.ctx, name, ["manage_users", "manage_groups"], description=f"{name} client"
            )
            if name != "monitoring":
                certificates.generate_inbound(self.ctx, client.id, name, "benchmark-p12")

    # -- jobs ----------------------------------------------------------------------------------

    def population(self, plan: SystemPlan) -> list[int]:
        """Indices of the people a source holds."""
        found = self.populations.get(plan.name)
        if found is None:
            found = self.populations[plan.name] = self._population(plan)
        return found

    def _population(self, plan: SystemPlan) -> list[int]:
        n = len(self.people)
        size = max(10, int(n * plan.share))
        offset = int(digest(plan.name)[:8], 16) % n if plan.share < 1 else 0
        return [(offset + i) % n for i in range(size)]

    def entity_ids(self, plan: SystemPlan, u: int) -> str:
        p = self.people[u]
        if plan.type == "local-identity-directory":
            return p.id
        if plan.type in ("ldap", "microsoft-ad"):
            return f"CN={p.given} {p.family} ({u}),OU=People,DC={slug(plan.name)},DC=example"
        if plan.type == "csv":
            return f"{slug(plan.name)[:3].upper()}{u:06d}"
        return f"{slug(plan.name)[:2].upper()}{100000 + u}"

    def target_id(self, target: str, u: int) -> str:
        p = self.people[u]
        kind = TARGET_TYPES.get(target, "scim")
        if kind == "local-identity-directory":
            return p.id
        if kind in ("ldap", "microsoft-ad"):
            return f"CN={p.given} {p.family},OU=People,DC={slug(target)},DC=example"
        if kind == "csv":
            return p.user_name
        return salted(target, p.id)

    def source_entity(self, plan: SystemPlan, entity_type: str, i: int) -> tuple[str, str]:
        """(id in the source, name) of a source's user or group ``i``."""
        if entity_type == "user":
            return self.entity_ids(plan, i), self.people[i].user_name
        name = self.group_names[i]
        if plan.type == "local-identity-directory":
            return self.group_ids[i], name
        return f"CN={name},OU=Groups,DC={slug(plan.name)},DC=example", name

    def target_entity(self, target: str, entity_type: str, i: int) -> str:
        if entity_type == "user":
            return self.target_id(target, i)
        if TARGET_TYPES.get(target) == "local-identity-directory":
            return self.group_ids[i]
        return salted(target, self.group_ids[i])

    def members_of(self, plan: SystemPlan) -> dict[str, list[int]]:
        """The users and groups a source holds (indices)."""
        held = {"user": self.population(plan)}
        if plan.groups:
            count = len(self.group_ids) if plan.share >= 1 else min(40, len(self.group_ids))
            held["group"] = list(range(count))
        return held

    def jobs(self) -> None:
        rng = self.rng
        weights = [4.0 if plan.share >= 1 else 1.2 for plan in SOURCES]
        total = sum(weights)
        counts = [max(2, round(self.n_jobs * w / total)) for w in weights]
        counts[-1] = max(2, counts[-1] + self.n_jobs - sum(counts))
        runs: list[JobRun] = []
        for plan, count in zip(SOURCES, counts, strict=True):
            held = self.members_of(plan)
            every = (self.now - self.start) / count
            for k in range(count):
                created = self.start + every * k + timedelta(seconds=rng.random() * 600)
                runs.append(self.job(plan, held, k, created))
        with self.services.db.write(self.ctx) as tx:  # parents first: jobs, statistics, logs
            bulk(tx, t.jobs, [run.row for run in runs])
            bulk(tx, t.job_statistics, (row for run in runs for row in run.statistics))
            bulk(tx, t.job_entities, (row for run in runs for row in run.logs()))
            for plan in SOURCES:
                self.source_state(tx, plan, runs)
        failed = [
            r for r in runs if r.row["status"] == JobStatus.FINISHED_WITH_ERROR.value and r.failures
        ]
        typical = max(failed, key=lambda r: r.failures) if failed else runs[-1]
        self.built.sample["job"] = typical.row["id"]
        self.built.sample["job_largest"] = max(runs, key=lambda r: r.volume).row["id"]
        self.runs = runs

    def job(
        self, plan: SystemPlan, held: dict[str, list[int]], k: int, created: datetime
    ) -> JobRun:
        """One finished job of a source: its row, statistics and (lazily) entity logs."""
        rng = self.rng
        size = len(held["user"])
        delta_capable = plan.type in DELTA_TYPES
        if k == 0:
            kind, trigger, by = JobType.READ, Trigger.IMMEDIATE, "benchmark"
        else:
            r = rng.random()
            kind = JobType.READ
            if r < 0.02 and size <= 5000:
                kind = JobType.RESYNC
            elif r < 0.06:
                kind = JobType.SIMULATE
            if rng.random() < 0.9 and kind is JobType.READ:
                trigger, by = Trigger.REPEAT, "Schedule"
            else:
                trigger = Trigger.IMMEDIATE
                by = rng.choice(("benchmark", "Public API - hr-sync", "ops.admin"))
        full = k == 0 or kind is not JobType.READ or not delta_capable or k % 24 == 0
        mode = ReadMode.FULL if full else ReadMode.DELTA
        r = rng.random()
        status = JobStatus.SUCCESS
        if r < 0.02 and k:
            status = JobStatus.MANUALLY_TERMINATED
        elif r < 0.04 and k:
            status = JobStatus.FINISHED_WITH_ERROR  # the source could not be read
        elif r < 0.14:
            status = JobStatus.FINISHED_WITH_ERROR  # some entities failed
        run = JobRun(self, plan, kind, mode, status, created, k)
        run.row.update(trigger=trigger.value, triggered_by=by)
        run.plan_entities(held)
        return run

    def source_state(self, tx: Transaction, plan: SystemPlan, runs: list[JobRun]) -> None:
        mine = [r for r in runs if r.plan is plan and r.row["status"] == JobStatus.SUCCESS.value]
        if not mine:
            return
        last = mine[-1]
        fulls = [r for r in mine if r.row["read_mode"] == ReadMode.FULL.value]
        since = (
            len([r for r in mine if r.row["created"] > fulls[-1].row["created"]]) if fulls else 0
        )
        for entity_type in self.members_of(plan):
            delta = plan.type in DELTA_TYPES
            bulk(
                tx,
                t.source_state,
                [
                    {
                        "source_id": self.built.systems[plan.name],
                        "entity_type": entity_type,
                        "delta_token": last.row["ended"] if delta else None,
                        "deltas_since_full": since if delta else 0,
                        "last_full_count": len(self.members_of(plan)[entity_type]),
                    }
                ],
            )

    def operational_data(self) -> None:
        """What the jobs wrote: every entity of a source in each of its targets."""
        rng = self.rng
        chains = {}
        for run in self.runs:
            if run.row["read_mode"] == ReadMode.FULL.value and run.row["type"] != "SIMULATE":
                chains[run.plan.name] = (run.row["chain_id"], run.row["ended"])
        first = {}
        for run in reversed(self.runs):
            first[run.plan.name] = run.row["ended"]

        def rows() -> Iterator[dict[str, Any]]:
            for plan in SOURCES:
                chain, seen = chains[plan.name]
                for target in plan.targets:
                    for entity_type, indices in self.members_of(plan).items():
                        for i in indices:
                            source_id, _ = self.source_entity(plan, entity_type, i)
                            yield {
                                "source_id": self.built.systems[plan.name],
                                "target_id": self.built.systems[target],
                                "entity_type": entity_type,
                                "source_entity_id": source_id,
                                "target_entity_id": self.target_entity(target, entity_type, i),
                                "hash": digest(target, source_id, "written"),
                                "source_hash": digest(plan.name, source_id, "read"),
                                "existed_before": int(rng.random() < 0.01),
                                "last_seen": chain,
                                "created": first[plan.name],
                                "modified": seen if rng.random() < 0.1 else first[plan.name],
                            }

        with self.services.db.write(self.ctx) as tx:
            bulk(tx, t.operational_data, rows())

    def realtime_logs(self) -> None:
        """Changes pushed in real time by two sources, each written into its targets."""
        rng = self.rng
        pushers = [p for p in SOURCES if p.name in ("Workday HR", "SuccessFactors")]
        count = max(100, self.n_users // 5)
        span = (self.now - self.start).total_seconds()
        with_names = "entity_name" in t.realtime_logs.c  # a schema that names the entity

        def rows() -> Iterator[dict[str, Any]]:
            for n in range(count):
                plan = pushers[0] if n % 10 < 7 else pushers[1]
                population = self.population(plan)
                u = population[rng.randrange(len(population))]
                operation = rng.choice(("CREATE", "UPDATE", "UPDATE", "PATCH", "PATCH", "DELETE"))
                failed = rng.random() < 0.05
                results = []
                for target in plan.targets:
                    state = {
                        "CREATE": "Entity Created",
                        "UPDATE": "Entity Updated",
                        "PATCH": "Entity Updated",
                        "DELETE": "Entity Deleted",
                    }[operation]
                    reason = None
                    if failed and target == plan.targets[-1]:
                        state, reason = "Entity Failed", rng.choice(FAIL_REASONS)
                    elif operation != "CREATE" and rng.random() < 0.2:
                        state = "Entity Already Provisioned"
                    results.append(
                        {
                            "systemId": self.built.systems[target],
                            "systemName": target,
                            "role": "target",
                            "operation": operation,
                            "state": state,
                            "reason": reason,
                        }
                    )
                started = self.start + timedelta(seconds=span * n / count + rng.random())
                named = {"entity_name": self.people[u].user_name} if with_names else {}
                yield named | {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "source_id": self.built.systems[plan.name],
                    "source_name": plan.name,
                    "entity_type": "user",
                    "entity_id": self.entity_ids(plan, u),
                    "operation": operation,
                    "status": "Finished with Error" if failed else "Finished Successfully",
                    "started": stamp(started),
                    "duration_ms": int(20 + rng.random() ** 3 * 900),
                    "error": "1 target failed" if failed else None,
                    "caller": "realtime-feed",
                    "systems": json_text(results),
                }

        with self.services.db.write(self.ctx) as tx:
            bulk(tx, t.realtime_logs, rows())

    def proxy_activity(self) -> None:
        """Calls of the proxies' SCIM APIs (in a schema that logs them)."""
        table = getattr(t, "proxy_activity", None)
        if table is None:
            return
        rng = self.rng
        proxies = [self.built.systems[p.name] for p in PROXIES]
        count = max(100, self.n_users // 2)
        span = (self.now - self.start).total_seconds()
        calls = (
            ("search", "Users", 200),
            ("get", "Users", 200),
            ("get", "Users", 404),
            ("patch", "Users", 200),
            ("replace", "Users", 200),
            ("create", "Users", 201),
            ("search", "Groups", 200),
            ("get", "Schemas", 200),
        )

        def rows() -> Iterator[dict[str, Any]]:
            for n in range(count):
                operation, endpoint, status = calls[rng.randrange(len(calls))]
                person = self.people[rng.randrange(len(self.people))]
                yield {
                    "time": stamp(self.start + timedelta(seconds=span * n / count)),
                    "system_id": proxies[n % len(proxies)],
                    "operation": operation,
                    "endpoint": endpoint,
                    "entity_id": person.id if operation not in ("search", "create") else None,
                    "status": status,
                    "duration_us": int(2000 + rng.random() ** 3 * 400_000),
                    "request_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                    "caller": "iag-connector",
                }

        with self.services.db.write(self.ctx) as tx:
            bulk(tx, table, rows())


@dataclass
class Slice:
    """Entity logs of one action of a job in one system, written lazily."""

    action: str
    entity_type: str
    system: str  # its name
    indices: Sequence[int]
    reasons: Sequence[str | None] = (None,)
    target: bool = True  # a target's write (else the source's skip or failure)


class JobRun:
    """One finished job: its row, its statistics and the slices of its entity logs."""

    def __init__(
        self,
        builder: Builder,
        plan: SystemPlan,
        kind: JobType,
        mode: ReadMode,
        status: JobStatus,
        created: datetime,
        k: int,
    ) -> None:
        self.builder, self.plan, self.k = builder, plan, k
        rng = builder.rng
        job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.created = created
        self.row: dict[str, Any] = {
            "id": job_id,
            "source_id": builder.built.systems[plan.name],
            "source_name": plan.name,
            "type": kind.value,
            "trigger": Trigger.REPEAT.value,
            "triggered_by": "Schedule",
            "status": status.value,
            "read_mode": mode.value,
            "created": stamp(created),
            "started": stamp(created + timedelta(seconds=1 + rng.random() * 3)),
            "ended": None,
            "heartbeat": None,
            "error": None,
            "outcome": None,
            "stop_requested": int(status is JobStatus.MANUALLY_TERMINATED),
            "resumed_from": None,
            "chain_id": job_id,
            "checkpoint": "{}",
            "options": json_text({"trace": False}),
            "worker": "bench-host:4242",
        }
        self.statistics: list[dict[str, Any]] = []
        self.slices: list[Slice] = []
        self.failures = 0
        self.volume = 0

    def plan_entities(self, held: dict[str, list[int]]) -> None:
        plan, rng, row = self.plan, self.builder.rng, self.row
        kind, status = JobType(row["type"]), JobStatus(row["status"])
        full = row["read_mode"] == ReadMode.FULL.value
        checkpoint = {}
        for entity_type, indices in held.items():
            source_stats = dict.fromkeys(_STATS, 0)
            size = len(indices)
            if status is JobStatus.FINISHED_WITH_ERROR and rng.random() < 0.15 and self.k:
                # the source could not be read: nothing written
                row["error"] = (
                    f"Reading {entity_type}s from {plan.name} failed: the back-end answered "
                    "503 Service Unavailable."
                )
                source_stats["failed"] = 1
                self.stat(entity_type, plan.name, "source", source_stats)
                continue
            if self.k == 0:
                changed = list(indices)
            else:
                n = max(1, int(size * min(0.01, 0.0005 + rng.random() ** 2 * 0.01)))
                if kind is JobType.RESYNC:
                    n = size
                start = rng.randrange(size)
                changed = [indices[(start + j) % size] for j in range(n)]
            if status is JobStatus.MANUALLY_TERMINATED:
                changed = changed[: len(changed) // 3]
            read = size if full else len(changed)
            if status is JobStatus.MANUALLY_TERMINATED:
                read = read // 3
            skipped = changed[::97] if entity_type == "user" else []
            source_stats["read"] = read
            source_stats["skipped"] = len(skipped)
            self.stat(entity_type, plan.name, "source", source_stats)
            if skipped:
                self.slices.append(
                    Slice("skipped", entity_type, plan.name, skipped, SKIP_REASONS[:2], False)
                )
            writing = [i for i in changed if i % 97] if skipped else changed
            checkpoint[entity_type] = read
            for target in plan.targets:
                stats = dict.fromkeys(_STATS, 0)
                failing: list[int] = []
                if status is JobStatus.FINISHED_WITH_ERROR and not row["error"] and writing:
                    if target == plan.targets[-1] or rng.random() < 0.3:
                        failing = writing[:: max(1, len(writing) // rng.randint(1, 40))][:200]
                failed_set = set(failing)
                rest = [i for i in writing if i not in failed_set] if failing else writing
                if self.k == 0 or kind is JobType.RESYNC:
                    actions = {"created" if self.k == 0 else "updated": rest}
                else:
                    cut1, cut2 = int(len(rest) * 0.2), int(len(rest) * 0.95)
                    actions = {
                        "created": rest[:cut1],
                        "updated": rest[cut1:cut2],
                        "deleted": rest[cut2:] if full else [],
                    }
                    if not full:
                        actions["updated"] = rest[cut1:]
                for action, chosen in actions.items():
                    if not chosen:
                        continue
                    stats[action] = len(chosen)
                    reasons: Sequence[str | None] = (None,)
                    if kind is JobType.SIMULATE:
                        reasons = (_SIMULATED,)
                    self.slices.append(Slice(action, entity_type, target, chosen, reasons))
                if failing:
                    stats["failed"] = len(failing)
                    self.failures += len(failing)
                    self.slices.append(Slice("failed", entity_type, target, failing, FAIL_REASONS))
                if full:
                    stats["unchanged"] = max(0, read - len(writing) - len(skipped))
                self.stat(entity_type, target, "target", stats)
        self.volume = sum(len(s.indices) for s in self.slices)
        started = datetime.fromisoformat(row["started"].replace("Z", "+00:00"))
        seconds = 2 + self.volume * 0.002 + (len(held["user"]) * 0.0002 if full else 0)
        ended = started + timedelta(seconds=seconds)
        self.ended = ended
        row["ended"] = row["heartbeat"] = stamp(ended)
        row["checkpoint"] = json_text(checkpoint)
        if status is JobStatus.MANUALLY_TERMINATED:
            row["outcome"] = "The job was stopped: nothing was deleted."
        elif status is JobStatus.FINISHED_WITH_ERROR and not row["error"]:
            row["outcome"] = f"{self.failures} entities failed."

    def stat(self, entity_type: str, system: str, role: str, counts: dict[str, int]) -> None:
        self.statistics.append(
            {
                "job_id": self.row["id"],
                "entity_type": entity_type,
                "system_id": self.builder.built.systems[system],
                "system_name": system,
                "role": role,
                **counts,
            }
        )

    def logs(self) -> Iterator[dict[str, Any]]:
        """The entity logs as the engine writes them: page after page of the source, each
        page's skips and every target's writes together, with the page's time."""
        b, plan = self.builder, self.plan
        started = datetime.fromisoformat(self.row["started"].replace("Z", "+00:00"))
        longest = max((len(s.indices) for s in self.slices), default=0)
        pages = max(1, -(-longest // PAGE))
        step = (self.ended - started) / pages
        for k in range(pages):
            written = stamp(started + step * (k + 1))
            for s in self.slices:
                size = len(s.indices)
                system_id = b.built.systems[s.system]
                for j in range(k * size // pages, (k + 1) * size // pages):
                    i = s.indices[j]
                    source_id, name = b.source_entity(plan, s.entity_type, i)
                    yield {
                        "job_id": self.row["id"],
                        "action": s.action,
                        "entity_type": s.entity_type,
                        "system_id": system_id,
                        "system_name": s.system,
                        "entity_id": source_id,
                        "reason": s.reasons[j % len(s.reasons)],
                        "content": HIDDEN if s.action in ("failed", "skipped") else None,
                        "created": written,
                        "name": name,
                        "target_entity_id": (
                            b.target_entity(s.system, s.entity_type, i)
                            if s.target and s.action != "failed"
                            else None
                        ),
                    }


_STATS = ("read", "skipped", "failed", "created", "updated", "deleted", "unchanged")
_SIMULATED = json_text({"diff": [{"op": "replace", "path": "title", "value": "Senior Analyst"}]})


# -- the data folder ---------------------------------------------------------------------------


def settings_of(folder: Path, url: str | None, **options: Any) -> Any:
    from provisor.settings import Settings

    return Settings(data_dir=folder, database_url=url, **options)


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database ``url`` names when it does not exist."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).first()
            if exists is None:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def analyse(url: str) -> None:
    """VACUUM ANALYZE, as autovacuum would have done by the time the data is this old: without
    statistics PostgreSQL plans scans, without the visibility map no index-only counts."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def build(args: argparse.Namespace) -> int:
    from provisor.runtime import Services, initialise

    folder = Path(args.build)
    if (folder / MANIFEST).exists():
        print(f"error: {folder} is built already (remove it to build again)", file=sys.stderr)
        return 2
    url = args.database_url
    if url:
        ensure_database(url)
    configure_logs("warning")
    settings = settings_of(folder, url, cert_key_type="EC-P256")  # quick keys: certificates
    began = time.perf_counter()
    initialise(settings)
    services = Services.open(settings)
    try:
        with services.db.read(Context.administrator("benchmark", tenant=TENANT)) as tx:
            query = select(func.count()).select_from(t.systems)
            if tx.execute(tx.scoped(query, t.systems)).scalar_one():
                print(
                    "error: the database holds systems already: give an empty one", file=sys.stderr
                )
                return 2
        print(
            f"building {folder} ({'PostgreSQL' if url else 'SQLite'}): {args.users:,} users, "
            f"{args.groups:,} groups, {args.jobs:,} jobs, 50 systems",
            flush=True,
        )
        built = Builder(services, args.users, args.groups, args.jobs, args.seed).run()
    finally:
        services.close()
    if url:
        analyse(url)
    seconds = time.perf_counter() - began
    manifest = {
        "database_url": url,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 1),
        "steps": built.seconds,
        "sizes": {"users": args.users, "groups": args.groups, "jobs": args.jobs},
        "counts": built.counts,
        "sample": built.sample,
        "systems": built.systems,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    print(
        f"built in {seconds:.1f} s; rows: "
        + ", ".join(f"{k} {v:,}" for k, v in built.counts.items())
    )
    return 0


# -- timings -----------------------------------------------------------------------------------

ADMIN = "console-bench"
PASSWORD = "console benchmark password"
ORIGIN = "http://console.test"  # the in-process browser's site
ROOT_PATH = "/console"
FORM_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SERVER_TIMING = re.compile(r"dur=([0-9.]+)")
TARGET_MS = 100.0  # the issue's bound on every page's median server time


@dataclass
class Page:
    """A console URL to time, and what it shows."""

    label: str  # the route, with what fills its parameters
    path: str  # the URL's path and query
    server_ms: list[float] = field(default_factory=list)  # Server-Timing of each request
    wall_ms: list[float] = field(default_factory=list)  # the request seen by the client
    cpu_ms: list[float] = field(default_factory=list)  # this process's CPU (in process only)
    statuses: set[int] = field(default_factory=set)
    size: int = 0

    def figures(self) -> dict[str, Any]:
        def quantiles(values: list[float]) -> dict[str, float]:
            ordered = sorted(values)
            if not ordered:
                return {}
            p90 = ordered[min(len(ordered) - 1, round(len(ordered) * 0.9) - 1)]
            return {
                "median": round(statistics.median(ordered), 1),
                "p90": round(p90, 1),
                "max": round(ordered[-1], 1),
            }

        return {
            "path": self.path,
            "status": sorted(self.statuses),
            "bytes": self.size,
            "server_ms": quantiles(self.server_ms),
            "wall_ms": quantiles(self.wall_ms),
            "cpu_ms": quantiles(self.cpu_ms),
        }

    @property
    def download(self) -> bool:
        """A file, not a page: timed once, not held to the target."""
        return self.path.split("?")[0].endswith(DOWNLOADS)

    def median(self) -> float:
        values = self.server_ms or self.wall_ms
        return statistics.median(values) if values else 0.0


def console_routes() -> list[APIRoute]:
    """The console's GET routes, as the application includes them."""
    from provisor.console.app import routers

    return [
        route
        for router in routers()
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    ]


def samples(services: Any, manifest: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Values for the console's path parameters, each with what it is: the kinds of thing a
    parameter names (by the path segment before it or by its own name)."""
    sample = manifest["sample"]
    ctx = Context.administrator("benchmark", tenant=TENANT)
    with services.db.read(ctx) as tx:

        def one(query: Any, table: Table) -> str:
            return str(tx.execute(tx.scoped(query.limit(1), table)).scalar_one())

        def entity_logs(job_id: str) -> int:
            query = select(func.count()).select_from(t.job_entities)
            query = query.where(t.job_entities.c.job_id == job_id)
            return int(tx.execute(tx.scoped(query, t.job_entities)).scalar_one())

        def members(group_id: str) -> int:
            query = select(func.count()).select_from(t.group_members)
            query = query.where(t.group_members.c.group_id == group_id)
            return int(tx.execute(tx.scoped(query, t.group_members)).scalar_one())

        client = one(select(t.clients.c.id).where(t.clients.c.name == "hr-sync"), t.clients)
        oc = t.outbound_certificates
        active = select(oc.c.system_id, oc.c.fingerprint).where(oc.c.active == 1)
        certificates = [(r.system_id, r.fingerprint) for r in tx.execute(tx.scoped(active, oc))]
        realtime = one(
            select(t.realtime_logs.c.id).order_by(t.realtime_logs.c.started.desc()), t.realtime_logs
        )
        job, big = sample["job"], sample["job_largest"]
        group, crowd = sample["group"], sample["group_largest"]
        user = one(select(t.users.c.user_name).where(t.users.c.id == sample["user"]), t.users)
        return {
            "system": [
                (sample["system"], "target Salesforce"),
                (sample["source"], "source Directory Feed"),
            ],
            "job": [
                (job, f"failed job, {entity_logs(job):,} entity logs"),
                (big, f"largest job, {entity_logs(big):,} entity logs"),
            ],
            "user": [(sample["user"], f"user {user}")],
            "source": [(sample["source"], "source Directory Feed")],
            "group": [
                (group, f"group of {members(group):,} members"),
                (crowd, f"group of {members(crowd):,} members"),
            ],
            "client": [(client, "technical user hr-sync")],
            "administrator": [(ADMIN, "administrator")],
            "fingerprint": [("", "its outbound certificate")],  # the system's (``fill``)
            "certificate_of": certificates,
            "schema": [(BADGE, "custom schema")],
            "realtime": [(realtime, "real-time log")],
            "kind": [("write", "write")],
            "version": [("1", "version 1")],
            "entity_type": [("user", "user")],
        }


def queries(services: Any, manifest: dict[str, Any]) -> dict[str, str]:
    """What the pages' searches look for: the sample user's names and e-mail, a source and a
    target system (``VARIANTS``' placeholders)."""
    sample, systems = manifest["sample"], manifest["systems"]
    ctx = Context.administrator("benchmark", tenant=TENANT)
    with services.db.read(ctx) as tx:
        query = select(t.users.c.user_name, t.users.c.doc).where(t.users.c.id == sample["user"])
        row = tx.execute(tx.scoped(query, t.users)).one()
    doc = orjson.loads(row.doc)
    return {
        "user_name": row.user_name,
        "prefix": row.user_name[:4],
        "family": doc.get("name", {}).get("familyName", row.user_name),
        "email": doc.get("emails", [{}])[0].get("value", ""),
        "vowel": "a",
        "schema": quote(BADGE, safe=""),
        "source": sample["source"],
        "target": systems["Salesforce"],
    }


SEGMENTS = {  # the path segment before a parameter -> what the parameter names
    "systems": "system",
    "sources": "system",
    "targets": "system",
    "jobs": "job",
    "users": "user",
    "groups": "group",
    "clients": "client",
    "administrators": "administrator",
    "outbound": "fingerprint",
    "certificates": "fingerprint",
    "schemas": "schema",
    "realtime": "realtime",
    "transformations": "kind",
    "versions": "version",
    "timeline": "user",
}
PARAMETERS = {  # a parameter's own name -> what it names
    "system": "system",
    "system_id": "system",
    "source": "source",
    "source_id": "source",
    "job_id": "job",
    "user_id": "user",
    "group_id": "group",
    "client_id": "client",
    "fingerprint": "fingerprint",
    "kind": "kind",
    "version": "version",
    "entity_type": "entity_type",
    "schema_id": "schema",
}


VARIANTS: dict[str, tuple[tuple[str, str], ...]] = {
    # a page's searches and filters (its query), timed besides the page itself; {names} are
    # the dataset's (see ``queries``)
    "/console/directory/users": (
        ("userName starts with", "q={prefix}"),
        ("display name starts with", "q={family}&by=displayName"),
        ("e-mail is", "q={email}&by=email"),
        ("page 100", "q={vowel}&start=1981"),
    ),
    "/console/directory/groups": (("name starts with", "q=app-"),),
    "/console/directory/groups/{group_id}": (("find a member", "find={prefix}"),),
    "/console/jobs": (
        ("failed", "state=Finished with Error"),
        ("of a source", "source={source}"),
        ("page 10", "offset=180"),
    ),
    "/console/jobs/{job_id}": (
        ("failed", "state=failed"),
        ("created", "state=created"),
        ("of a target", "system={target}"),
        ("page 100", "offset=4950"),
    ),
    "/console/realtime": (
        ("of a person", "entity={user_name}"),
        ("failed", "state=Finished with Error"),
    ),
    "/console/timeline": (("userName", "q={user_name}"), ("e-mail", "q={email}")),
    "/console/proxy": (("page 10", "offset=450"),),
}
QUERIES = {"/console/directory/schemas/view": "id={schema}"}  # pages that need a query
DOWNLOADS = ("/export", "/download")  # files, not pages: timed once, not held to the target


def pages_to_time(
    routes: list[Any], values: dict[str, list[tuple[str, str]]], queries: dict[str, str]
) -> tuple[list[Page], list[str]]:
    """Every GET route as pages (a parameterised one once per sample of what its first
    parameter names), each with its searches (``VARIANTS``); the routes no sample fills."""
    pages: list[Page] = []
    unfilled: list[str] = []
    seen: set[str] = set()
    for route in routes:
        path = route.path.rstrip("/") or route.path
        if path in seen or path.startswith(f"{ROOT_PATH}/login"):
            continue  # /console and /console/ are one page; sign-in pages need no session
        if path != ROOT_PATH and not path.startswith(f"{ROOT_PATH}/"):
            continue  # the installation's console (/operator/console): the operators' own
        seen.add(path)
        filled = fill(path, list(route.param_convertors), values)
        if filled is None:
            unfilled.append(path)
            continue
        for label, url in filled:
            if path in QUERIES:
                url = f"{url}?{QUERIES[path].format(**queries)}"
            pages.append(Page(label, url))
            for what, query in VARIANTS.get(path, ()):
                pages.append(Page(f"{label} {what}", f"{url}?{query.format(**queries)}"))
    return pages, unfilled


def fill(
    path: str, names: list[str], values: dict[str, list[tuple[str, str]]]
) -> list[tuple[str, str]] | None:
    """(label, URL) of a route once per sample of its first parameter (None: a parameter no
    sample fills)."""
    short = path[len(ROOT_PATH) :] or "/"
    if not names:
        return [(short, path)]
    kinds = []
    for name in names:
        before = path.split("{" + name)[0].rstrip("/").rsplit("/", 1)[-1]
        kinds.append(PARAMETERS.get(name) or SEGMENTS.get(before))
    if any(kind is None or kind not in values for kind in kinds):
        return None
    choices = [values[kind] for kind in kinds if kind]
    found = []
    for first in choices[0]:  # each sample of the first parameter, the first of the others
        picked = [first] + [c[0] for c in choices[1:]]
        if "system" in kinds and "kind" in kinds:  # a source's is read, a target's write
            source = picked[kinds.index("system")][1].startswith("source")
            picked[kinds.index("kind")] = ("read", "read") if source else ("write", "write")
        if "system" in kinds and "fingerprint" in kinds:  # the system's own certificate
            owned = dict(values.get("certificate_of", [])).get(picked[kinds.index("system")][0])
            if owned is None:
                continue
            picked[kinds.index("fingerprint")] = (owned, "its outbound certificate")
        url = path
        for name, (value, _) in zip(names, picked, strict=True):
            url = re.sub(r"\{" + name + r"(:[^}]*)?\}", quote(value, safe=""), url)
        found.append((f"{short} [{', '.join(what for _, what in picked)}]", url))
    return found


def ensure_admin(services: Any) -> None:
    """The benchmark's administrator, with its known password."""
    from provisor.admins.model import Role
    from provisor.errors import ConflictError

    ctx = Context.system("benchmark", tenant=TENANT)
    try:
        services.administrators.create(ctx, ADMIN, Role.ADMINISTRATOR, PASSWORD)
    except ConflictError:
        services.administrators.reset_password(ctx, ADMIN, PASSWORD)


def signed_in(response: Any) -> None:
    location = response.headers.get("location", "")
    if response.status_code != 303 or "/login" in location:
        raise SystemExit(f"error: sign-in failed ({response.status_code} {location})")


def record(page: Page, response: Any, wall: float) -> None:
    page.statuses.add(response.status_code)
    page.wall_ms.append(wall * 1000)
    page.size = len(response.content)
    found = SERVER_TIMING.search(response.headers.get("server-timing", ""))
    if found:
        page.server_ms.append(float(found.group(1)))


async def time_in_process(app: Any, pages: list[Page], repeat: int) -> None:
    """Each page ``repeat`` times (after one untimed request) through the ASGI application."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN}, timeout=120
    ) as browser:
        form = await browser.get("/console/login")
        token = FORM_CSRF.search(form.text)
        if token is None:
            raise SystemExit(f"error: no sign-in form at /console/login ({form.status_code})")
        signed_in(
            await browser.post(
                "/console/login",
                data={"name": ADMIN, "password": PASSWORD, "csrf": token.group(1)},
            )
        )
        for page in pages:
            if not page.download:
                await browser.get(page.path)
            for _ in range(1 if page.download else repeat):
                began, cpu = time.perf_counter(), time.process_time()
                response = await browser.get(page.path)
                page.cpu_ms.append((time.process_time() - cpu) * 1000)
                record(page, response, time.perf_counter() - began)
            print(f"  {page.label:<100} {page.median():8.1f} ms", flush=True)


def time_live(folder: Path, url: str | None, pages: list[Page], repeat: int) -> None:
    """Each page through a ``provisor serve`` on loopback (no job runner: nothing purges
    the old logs meanwhile)."""
    import os
    import signal
    import socket
    import subprocess

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PROVISOR_DATA_DIR": str(folder),
        "PROVISOR_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT / "src"),
    }
    if url:
        env["PROVISOR_DATABASE_URL"] = url
    command = [sys.executable, "-m", "provisor", "serve", "--no-jobs", "--host", "127.0.0.1"]
    log = (folder / "serve.log").open("w")
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"origin": base}, timeout=120) as browser:
            deadline = time.monotonic() + 60
            while True:
                try:
                    form = browser.get("/console/login")
                    break
                except httpx.TransportError as exc:
                    if time.monotonic() > deadline or server.poll() is not None:
                        problem = f"error: provisor serve did not start: see {log.name}"
                        raise SystemExit(problem) from exc
                    time.sleep(0.3)
            token = FORM_CSRF.search(form.text)
            if token is None:
                raise SystemExit(f"error: no sign-in form at {base}/console/login")
            signed_in(
                browser.post(
                    "/console/login",
                    data={"name": ADMIN, "password": PASSWORD, "csrf": token.group(1)},
                )
            )
            for page in pages:
                if not page.download:
                    browser.get(page.path)
                for _ in range(1 if page.download else repeat):
                    began = time.perf_counter()
                    response = browser.get(page.path)
                    record(page, response, time.perf_counter() - began)
                print(f"  {page.label:<100} {page.median():8.1f} ms", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def profile(app: Any, page: Page, out: Path) -> Path:
    """One request of ``page`` in process under cProfile, the handler run on the profiled
    thread (not the thread pool); the statistics written to ``out``."""
    import asyncio
    import cProfile
    import pstats

    import fastapi.dependencies.utils
    import fastapi.routing
    import httpx

    import provisor.console.rendering

    async def inline(call: Any, *args: Any, **kwargs: Any) -> Any:
        return call(*args, **kwargs)

    patched = (fastapi.routing, fastapi.dependencies.utils, provisor.console.rendering)
    saved = [module.run_in_threadpool for module in patched]

    async def once(browser: httpx.AsyncClient) -> None:
        form = await browser.get("/console/login")
        token = FORM_CSRF.search(form.text)
        assert token is not None
        signed_in(
            await browser.post(
                "/console/login",
                data={"name": ADMIN, "password": PASSWORD, "csrf": token.group(1)},
            )
        )
        await browser.get(page.path)
        profiler = cProfile.Profile()
        for module in patched:
            module.run_in_threadpool = inline  # type: ignore[attr-defined]
        try:
            profiler.enable()
            await browser.get(page.path)
            profiler.disable()
        finally:
            for module, original in zip(patched, saved, strict=True):
                module.run_in_threadpool = original  # type: ignore[attr-defined]
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as stream:
            stats = pstats.Stats(profiler, stream=stream)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(25)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN}, timeout=120
        ) as browser:
            await once(browser)

    asyncio.run(run())
    return out


def timings(args: argparse.Namespace) -> int:
    import asyncio

    from provisor.asgi import create_app
    from provisor.runtime import Services, initialise

    folder = Path(args.data)
    if not (folder / MANIFEST).is_file():
        print(f"error: no {MANIFEST} in {folder}: build it with --build first", file=sys.stderr)
        return 2
    manifest = json.loads((folder / MANIFEST).read_text())
    url = manifest["database_url"]
    configure_logs("warning")
    settings = settings_of(folder, url, log_level="warning")
    initialise(settings)  # the schema of this checkout (new migrations since the build)
    services = Services.open(settings)
    results: dict[str, list[Page]] = {}
    try:
        ensure_admin(services)
        app = create_app(settings, services)
        pages, unfilled = pages_to_time(
            console_routes(), samples(services, manifest), queries(services, manifest)
        )
        pages += [Page(f"{extra} [--page]", extra) for extra in args.page]
        counts = manifest["counts"]
        print(
            f"console pages over {folder} ({'PostgreSQL' if url else 'SQLite'}: "
            f"{counts['users']:,} users, {counts['jobs']:,} jobs, {counts['systems']} systems, "
            f"{counts['job_entities']:,} entity logs); {len(pages)} pages x {args.repeat}",
            flush=True,
        )
        if unfilled:
            print("  not timed (no sample for a parameter): " + ", ".join(unfilled))
        modes = ["in-process", "live"] if args.live else ["in-process"]
        if args.live_only:
            modes = ["live"]
        for mode in modes:
            timed = [Page(p.label, p.path) for p in pages]
            print(f"\n{mode}:", flush=True)
            if mode == "live":
                time_live(folder, url, timed, args.repeat)
            else:
                asyncio.run(time_in_process(app, timed, args.repeat))
            results[mode] = timed
        profiles = {}
        if args.profile:
            slow = [
                p for p in results[modes[0]] if p.median() > args.profile_over and not p.download
            ]
            for n, page in enumerate(slow):
                out = Path(args.profile) / f"{n:02d}-{slug(page.label)[:80]}.txt"
                profiles[page.label] = str(profile(app, page, out))
    finally:
        services.close()
    report(results, manifest, args, unfilled, profiles)
    return 0


def report(
    results: dict[str, list[Page]],
    manifest: dict[str, Any],
    args: argparse.Namespace,
    unfilled: list[str],
    profiles: dict[str, str],
) -> None:
    print("\n" + "=" * 150)
    print(
        f"RESULTS: server time per page (Server-Timing, ms over {args.repeat} requests; cpu: "
        "the in-process request's CPU time in this process, steadier on a busy machine)"
    )
    print("=" * 150)
    modes = list(results)
    header = f"{'page':<100}{'status':>7}{'KiB':>7}"
    for mode in modes:
        header += f"  {mode + ' p50':>16}{'p90':>7}"
        if mode == "in-process":
            header += f"{'cpu p50':>9}"
    print(header)
    first = results[modes[0]]
    slow = []
    for n, page in enumerate(first):
        line = f"{page.label[:99]:<100}{'/'.join(map(str, sorted(page.statuses))):>7}"
        line += f"{page.size / 1024:7.1f}"
        for mode in modes:
            figures = (
                results[mode][n].figures()["server_ms"] or results[mode][n].figures()["wall_ms"]
            )
            line += f"  {figures.get('median', 0):16.1f}{figures.get('p90', 0):7.1f}"
            if mode == "in-process":
                cpu = results[mode][n].figures()["cpu_ms"]
                line += f"{cpu.get('median', 0):9.1f}"
        if page.download:
            line += "  (a download, timed once)"
        elif any(results[m][n].median() > TARGET_MS for m in modes):
            slow.append(page.label)
            line += "  SLOW"
        print(line)
    print(
        f"\npages over {TARGET_MS:.0f} ms median: {len(slow)}"
        + (": " + "; ".join(slow) if slow else "")
    )
    for label, out in profiles.items():
        print(f"  profile of {label}: {out}")
    summary = {
        "data": str(Path(args.data).resolve()),
        "backend": "postgresql" if manifest["database_url"] else "sqlite",
        "counts": manifest["counts"],
        "repeat": args.repeat,
        "target_ms": TARGET_MS,
        "pages": {mode: {p.label: p.figures() for p in pages} for mode, pages in results.items()},
        "slow": slow,
        "not_timed": unfilled,
        "profiles": profiles,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
        print(f"JSON summary: {args.json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--build", metavar="FOLDER", help="make a data folder and its data")
    what.add_argument("--data", metavar="FOLDER", help="time the console over a built folder")
    parser.add_argument("--database-url", help="with --build: PostgreSQL instead of SQLite")
    parser.add_argument("--users", type=int, default=100_000, help="directory users")
    parser.add_argument("--groups", type=int, default=500, help="directory groups")
    parser.add_argument("--jobs", type=int, default=1000, help="finished jobs")
    parser.add_argument("--seed", type=int, default=18, help="of the generated data")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument(
        "--live", action="store_true", help="also time a provisor serve on loopback"
    )
    parser.add_argument("--live-only", action="store_true", help="time provisor serve only")
    parser.add_argument(
        "--page", action="append", default=[], help="another console URL to time (repeatable)"
    )
    parser.add_argument("--profile", metavar="FOLDER", help="cProfile each slow page into FOLDER")
    parser.add_argument(
        "--profile-over",
        type=float,
        default=TARGET_MS,
        metavar="MS",
        help="with --profile: the pages slower than this median (default: the 100 ms target)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = parser.parse_args()
    if args.build:
        sys.exit(build(args))
    sys.exit(timings(args))


if __name__ == "__main__":
    main()
