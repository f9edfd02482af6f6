"""The targets' own ingest rate, for ``benchmarks/sync.py --compare``: what a job wrote into
provisor B and slapd, written again by a plain client into a fresh B and a fresh slapd, one
at a time (each target alone on the machine), the way the job writes.

* SCIM: B's users and groups listed, then POSTed to a fresh ``provisor serve`` with SCIM Bulk
  requests of the job's sizes (jobs/writing.py's ``bulk_chunk`` of a page of 1,000 users,
  of 20 groups), ``threads`` requests in flight (the job's ``ips.write.concurrency``);
  groups name their members by the new users' ids.
* LDAP: slapd's entries (users, then groups) added to a fresh slapd with python-ldap's
  ``add_s``, one connection per thread (the LDAP connector's pool), like the job's adds.

The rate of a target is its users divided by the seconds it took to take the users and the
groups: the job writes both, so it is compared with both.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SCIM_JSON = "application/scim+json"
READ_ONLY = ("id", "meta", "groups")


@dataclass
class Ingest:
    """A target's own ingest: seconds for the users, then for the groups."""

    target: str
    users: int
    groups: int
    user_seconds: float
    group_seconds: float

    @property
    def seconds(self) -> float:
        return self.user_seconds + self.group_seconds

    @property
    def rate(self) -> float:
        """Users a second, the groups' time included (as a job's rate is)."""
        return self.users / self.seconds if self.seconds else 0.0

    @property
    def users_rate(self) -> float:
        return self.users / self.user_seconds if self.user_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "users": self.users,
            "groups": self.groups,
            "user_seconds": round(self.user_seconds, 2),
            "group_seconds": round(self.group_seconds, 2),
            "users_per_s": round(self.rate),
            "users_only_per_s": round(self.users_rate),
        }


# -- SCIM --------------------------------------------------------------------------------------


def scim_listing(base_url: str, auth: str, kind: str) -> list[dict[str, Any]]:
    """Every resource of /scim/<kind>, without its read-only attributes."""
    found: list[dict[str, Any]] = []
    headers = {"Authorization": auth, "Accept": SCIM_JSON}
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        cursor = "initial"
        while cursor != "end":
            response = client.get(f"/scim/{kind}", params={"startId": cursor, "count": 1000})
            response.raise_for_status()
            body = orjson.loads(response.content)
            found.extend(body.get("Resources", []))
            cursor = body.get("nextId") or "end"
    return found


def scim_ingest(
    base_url: str,
    auth: str,
    users: Sequence[dict[str, Any]],
    groups: Sequence[dict[str, Any]],
    *,
    bulk_size: int,
    group_page: int,
    threads: int,
) -> Ingest:
    """Users, then groups (members mapped to the new ids), into a SCIM service with Bulk."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def client() -> httpx.Client:
        found: httpx.Client | None = getattr(local, "client", None)
        if found is None:
            found = httpx.Client(
                base_url=base_url,
                headers={"Authorization": auth, "Content-Type": SCIM_JSON},
                timeout=600,
            )
            local.client = found
            with lock:
                clients.append(found)
        return found

    def bulk(path: str, documents: Sequence[dict[str, Any]]) -> list[str | None]:
        operations = [
            {
                "method": "POST",
                "path": path,
                "bulkId": f"b{i}",
                "data": {k: v for k, v in d.items() if k not in READ_ONLY},
            }
            for i, d in enumerate(documents)
        ]
        body = orjson.dumps({"schemas": [BULK_REQUEST], "Operations": operations})
        response = client().post("/scim/Bulk", content=body)
        if response.status_code != 200:
            raise SystemExit(f"error: Bulk HTTP {response.status_code}: {response.text[:300]}")
        by_id = {op.get("bulkId"): op for op in orjson.loads(response.content)["Operations"]}
        ids: list[str | None] = []
        for i in range(len(documents)):
            op = by_id.get(f"b{i}", {})
            location = str(op.get("location") or "")
            ids.append(location.rstrip("/").rsplit("/", 1)[-1] if location else None)
        return ids

    try:
        started = time.perf_counter()
        new_ids = run_chunks(users, bulk_size, threads, lambda part: bulk("/Users", part))
        user_seconds = time.perf_counter() - started
        failed = sum(1 for i in new_ids if i is None)
        if failed:
            raise SystemExit(f"error: {failed} users not taken by the fresh SCIM service")
        mapping = {u["id"]: n for u, n in zip(users, new_ids, strict=True)}
        mapped = [
            {
                **g,
                "members": [
                    {"value": mapping.get(m["value"], m["value"]), "type": m.get("type", "User")}
                    for m in g.get("members", [])
                ],
            }
            for g in groups
        ]
        started = time.perf_counter()
        group_ids = run_chunks(mapped, group_page, threads, lambda part: bulk("/Groups", part))
        group_seconds = time.perf_counter() - started
        if any(i is None for i in group_ids):
            raise SystemExit("error: groups not taken by the fresh SCIM service")
    finally:
        for c in clients:
            c.close()
    return Ingest("SCIM (provisor B)", len(users), len(groups), user_seconds, group_seconds)


def run_chunks(
    items: Sequence[Any],
    size: int,
    threads: int,
    call: Callable[[Sequence[Any]], list[str | None]],
) -> list[str | None]:
    """``call`` on chunks of ``size`` items, ``threads`` at a time; the results in order."""
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(call, chunks))
    return [x for part in parts for x in part]


# -- LDAP --------------------------------------------------------------------------------------


def ldap_entries(server: Any, base: str) -> list[tuple[str, dict[str, list[bytes]]]]:
    import ldap  # type: ignore[import-untyped]

    conn = server.connect()
    try:
        found = conn.search_s(base, ldap.SCOPE_ONELEVEL, "(objectClass=*)")
    finally:
        conn.unbind_s()
    return [(dn, attrs) for dn, attrs in found]


def ldap_ingest(
    server: Any,
    users: Sequence[tuple[str, dict[str, list[bytes]]]],
    groups: Sequence[tuple[str, dict[str, list[bytes]]]],
    *,
    threads: int,
) -> Ingest:
    """Users, then groups, added one at a time on each of ``threads`` connections."""
    import ldap.modlist  # type: ignore[import-untyped]

    def add_all(entries: Sequence[tuple[str, dict[str, list[bytes]]]]) -> float:
        chunks = [entries[i::threads] for i in range(threads)]

        def add(part: Sequence[tuple[str, dict[str, list[bytes]]]]) -> None:
            conn = server.connect()
            try:
                for dn, attrs in part:
                    conn.add_s(dn, ldap.modlist.addModlist(attrs))
            finally:
                conn.unbind_s()

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(add, chunks))
        return time.perf_counter() - started

    user_seconds = add_all(users)
    group_seconds = add_all(groups)
    return Ingest("LDAP (slapd)", len(users), len(groups), user_seconds, group_seconds)


@contextlib.contextmanager
def fresh_slapd(folder: Path, bases: Sequence[str]) -> Iterator[Any]:
    """A fresh slapd with the organizational units ``bases``."""
    from tests.connectors.ldap_server import running_slapd

    with running_slapd(folder) as server:
        server.add(
            (dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]})
            for dn in bases
        )
        yield server
