"""Benchmark of the LDAP connector against a local slapd (started here, as the tests do).

What it measures, through ``LDAPConnector`` (python-ldap in threads, a pool of 4 connections):

* the full read of N users (default 10,000; each ~10 attributes) with simple paged results
  at ``ldap.page.size`` 100 (the default) and 1000, ``memberOf`` included (100 groups of 100
  members under the group path), in users per second;
* the creation of M users (default 2,000) with ``--concurrency`` creates in flight (the way a
  job writes), and one at a time, in users per second;
* the delta read after 50 users moved from one group to another (only the group entries
  change): its time, the users it returns, and the size of the delta token (which carries
  the membership snapshot of every user in a group).

slapd runs with ``dbnosync`` unless ``--durable`` (each write then waits for the disk, which
caps creates at the server's commit rate: ~1,400/s on the reference machine, see
/work/shared/notes/ldap-throughput.md). Run it from the project root::

    python benchmarks/ldap_connector.py
    python benchmarks/ldap_connector.py --users 20000 --creates 5000 --durable --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ldap  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provisor.connectors.base import ConnectorConfig, Role
from provisor.connectors.ldap.connector import LDAPConnector
from tests.connectors.ldap_server import LDAPServer, running_slapd


def user(uid: str, path: str) -> tuple[str, dict[str, list[str]]]:
    return f"uid={uid},{path}", {
        "objectClass": ["inetOrgPerson"],
        "uid": [uid],
        "cn": [f"User {uid}"],
        "sn": ["Benchmark"],
        "givenName": ["Bench"],
        "displayName": [f"Bench {uid}"],
        "mail": [f"{uid}@example.org"],
        "telephoneNumber": ["+49 6227 7 47474"],
        "mobile": ["+49 170 0000000"],
        "title": ["Engineer"],
        "employeeNumber": [uid[1:]],
    }


def connector(server: LDAPServer, page_size: int) -> LDAPConnector:
    properties = {
        "ldap.url": server.url,
        "ldap.user": server.bind_dn,
        "ldap.password": server.password,
        "ldap.user.path": f"ou=people,{server.suffix}",
        "ldap.group.path": f"ou=groups,{server.suffix}",
        "ldap.page.size": str(page_size),
    }
    return LDAPConnector(ConnectorConfig("bench", "Benchmark", Role.TARGET, properties))


async def read_users(server: LDAPServer, page_size: int, expected: int) -> float:
    async with connector(server, page_size) as source:
        start = time.perf_counter()
        count = 0
        async for page in source.read("user"):
            count += len(page.entities)
        elapsed = time.perf_counter() - start
    assert count == expected, (count, expected)
    return elapsed


async def delta_after_moves(server: LDAPServer, dns: list[str], moved: int) -> dict[str, Any]:
    """Move ``moved`` members of g000 to g001, then read the changes: seconds, users, token."""
    groups = f"ou=groups,{server.suffix}"
    await asyncio.sleep(1.02 - time.time() % 1)  # the token's second holds one change only
    conn = server.connect()
    conn.modify_s(dns[-1], [(ldap.MOD_REPLACE, "title", [b"Lead"])])
    conn.unbind_s()
    async with connector(server, 100) as source:
        token = None
        async for page in source.read("user"):
            token = page.delta_token or token
        assert token is not None
        leaving = [dn.encode() for dn in dns[0 : moved * 100 : 100]]
        conn = server.connect()
        conn.modify_s(f"cn=g000,{groups}", [(ldap.MOD_DELETE, "member", leaving)])
        conn.modify_s(f"cn=g001,{groups}", [(ldap.MOD_ADD, "member", leaving)])
        conn.unbind_s()
        start = time.perf_counter()
        read = 0
        async for page in source.read("user", delta=token):
            read += len(page.entities)
        elapsed = time.perf_counter() - start
    return {"delta_s": round(elapsed, 3), "delta_users": read, "token_chars": len(token)}


async def create_users(server: LDAPServer, prefix: str, count: int, concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)
    async with connector(server, 100) as target:

        async def create(i: int) -> None:
            uid = f"{prefix}{i:06}"
            entity = {
                "uid": [uid],
                "cn": [uid],
                "sn": ["Created"],
                "givenName": ["New"],
                "mail": [f"{uid}@example.org"],
                "mobile": ["+49 170 1111111"],
            }
            async with slots:
                await target.create("user", entity, entity_id=uid)

        start = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(count)))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--creates", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--durable", action="store_true", help="no dbnosync")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"users": args.users, "durable": args.durable}
    with tempfile.TemporaryDirectory() as folder:
        with running_slapd(Path(folder) / "slapd", durable=args.durable) as server:
            people, groups = f"ou=people,{server.suffix}", f"ou=groups,{server.suffix}"
            ous = [
                (dn, {"objectClass": ["organizationalUnit"], "ou": [dn[3:9]]})
                for dn in (people, groups)
            ]
            server.add(ous)
            start = time.perf_counter()
            server.add(user(f"u{i:06}", people) for i in range(args.users))
            dns = [f"uid=u{i:06},{people}" for i in range(args.users)]
            server.add(
                (
                    f"cn=g{g:03},{groups}",
                    {"objectClass": ["groupOfNames"], "cn": [f"g{g:03}"], "member": dns[g::100]},
                )
                for g in range(min(100, args.users))
            )
            results["load_s"] = round(time.perf_counter() - start, 2)
            for size in (100, 1000):
                elapsed = asyncio.run(read_users(server, size, args.users))
                results[f"read_page_{size}_per_s"] = round(args.users / elapsed)
            results.update(asyncio.run(delta_after_moves(server, dns, 50)))
            for label, prefix, concurrency in (
                ("create_concurrent_per_s", "n", args.concurrency),
                ("create_sequential_per_s", "s", 1),
            ):
                elapsed = asyncio.run(create_users(server, prefix, args.creates, concurrency))
                results[label] = round(args.creates / elapsed)
    if args.json:
        print(json.dumps(results))
        return
    print(
        f"slapd {'durable' if args.durable else 'dbnosync'}; {args.users} users loaded in "
        f"{results['load_s']} s (python-ldap, window 32)"
    )
    for size in (100, 1000):
        print(f"full read, page size {size:>4}: {results[f'read_page_{size}_per_s']:>7} users/s")
    print(
        f"create, {args.concurrency} in flight:   {results['create_concurrent_per_s']:>7} users/s"
    )
    print(f"create, one at a time:   {results['create_sequential_per_s']:>7} users/s")
    print(
        f"delta read after 50 users changed groups: {results['delta_users']} users in "
        f"{results['delta_s']} s; delta token {results['token_chars']} characters"
    )


if __name__ == "__main__":
    main()
