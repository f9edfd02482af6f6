"""Benchmark of the transformation engine: entities per second on one core.

For N generated users (realistic internal SCIM JSON, ~1.3 KB each, seeded so runs compare),
it times, in one process and one thread:

* ``scim-write``: the SCIM System default write transformation (spec §1.11), as an update
  (``entityIdTargetSystem`` known);
* ``realistic-30``: a 30-mapping write document of the kind administrators write: plain and
  URN paths, filters, a multi-key projection, the ``[?(@.value)]`` target form, conditions,
  ``valueMapping``, defaults, variables and functions (case, concat, replace, split,
  substring, date, country code, putIfAbsent, resolveEntityIds);
* ``lid-read+write``: the Local Identity Directory read default followed by its write
  default, as a job does for each entity of a full read.

Each result is entities per second over the whole set (after one warm-up pass over 1,000
entities), with the p50 and p99 time per entity; the target is 5,000 entities/s for each.
Compilation happens once per document and is timed apart. Run from the project root::

    python benchmarks/transform.py --users 100000
    python benchmarks/transform.py --users 20000 --json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from provisor.transform import Transformation, Transformed
from provisor.transform.defaults import default_transformation

TARGET = 5_000  # entities per second, one core
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SAP = "urn:ietf:params:scim:schemas:extension:sap:2.0:User"
CUSTOM = "urn:sap:cloud:scim:schemas:extension:custom:2.0:User"

GIVEN = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tara",
]
FAMILY = [
    "Müller",
    "Schmidt",
    "Smith",
    "García",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Tanaka",
    "Nguyen",
    "Okafor",
    "Johansson",
    "O'Brien",
    "van Dijk",
    "Silva",
    "Novak",
    "Kim",
]
DEPARTMENTS = ["Sales", "Finance", "Engineering", "HR", "Legal", "Support", "Marketing"]
COUNTRIES = ["Germany", "France", "United States", "Japan", "Brazil", "India", "Poland"]


def make_user(i: int, rng: random.Random) -> dict[str, Any]:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    login = f"{given}.{family}{i}".lower().replace(" ", "").replace("'", "")
    login = unicodedata.normalize("NFKD", login).encode("ascii", "ignore").decode()
    department = rng.choice(DEPARTMENTS)
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, SAP, CUSTOM],
        "id": f"user-{i}",
        "externalId": f"HR-{i:07d}",
        "userName": login,
        "name": {
            "givenName": given,
            "familyName": family,
            "formatted": f"{given} {family}",
            "honorificPrefix": rng.choice(["Mr.", "Ms.", "Dr.", "Mx."]),
        },
        "displayName": f"{given} {family}",
        "title": rng.choice(["Engineer", "Manager", "Analyst", "Director"]),
        "userType": rng.choice(["Employee", "Contractor", "Intern"]),
        "preferredLanguage": rng.choice(["en-US", "de-DE", "fr-FR", "ja-JP"]),
        "locale": rng.choice(["en-US", "de-DE", "fr-FR"]),
        "timezone": rng.choice(["Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
        "active": rng.random() > 0.05,
        "emails": [
            {"value": f"{login}@example.com", "type": "work", "primary": True},
            {"value": f"{login}@home.example.org", "type": "home"},
        ],
        "phoneNumbers": [
            {"value": f"+49 30 {rng.randint(1000000, 9999999)}", "type": "work"},
            {"value": f"+49 170 {rng.randint(1000000, 9999999)}", "type": "mobile"},
        ],
        "addresses": [
            {
                "streetAddress": f"{rng.randint(1, 200)} Main Street",
                "locality": "Berlin",
                "postalCode": f"{rng.randint(10000, 99999)}",
                "country": rng.choice(COUNTRIES),
                "type": "work",
                "primary": True,
            }
        ],
        "groups": [
            {"value": f"grp-{department.lower()}", "display": department},
            {"value": "grp-all", "display": "All"},
        ],
        ENTERPRISE: {
            "employeeNumber": f"{i:07d}",
            "costCenter": f"CC-{rng.randint(1000, 9999)}",
            "organization": "Example Corp",
            "division": rng.choice(["EMEA", "AMER", "APJ"]),
            "department": department,
            "manager": {"value": f"user-{rng.randint(0, max(i, 1))}", "displayName": "Boss"},
        },
        SAP: {"validFrom": "2024-01-01T00:00:00Z", "validTo": "2030-12-31T00:00:00Z"},
        CUSTOM: {
            "attributes": [
                {"name": "customAttribute1", "value": f"badge-{i}"},
                {"name": "customAttribute2", "value": rng.choice(["A", "B"])},
            ]
        },
        "hireDate": f"{rng.randint(2000, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }


REALISTIC_30 = {
    "user": {
        "condition": "($.emails EMPTY false) && ($.userName EMPTY false) && "
        "isValidEmail($.emails[0].value)",
        "mappings": [
            {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id"},
            {
                "constant": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "targetPath": "$.schemas",
            },
            {
                "sourcePath": "$.userName",
                "targetPath": "$.userName",
                "functions": [{"type": "toLowerCaseString"}],
            },
            {"sourcePath": "$.externalId", "targetPath": "$.externalId"},
            {"sourcePath": "$.name.givenName", "targetPath": "$.name.givenName", "optional": True},
            {"sourcePath": "$.name.familyName", "targetPath": "$.name.familyName"},
            {
                "sourcePath": "$.name.givenName",
                "targetPath": "$.displayName",
                "functions": [{"type": "concatString", "suffix": " %display.suffix%"}],
            },
            {"sourcePath": "$.emails[?(@.primary == true)].value", "targetPath": "$.mail"},
            {
                "sourcePath": "$.emails[*].['value','type','primary']",
                "targetPath": "$.emails",
                "preserveArrayWithSingleElement": True,
            },
            {
                "sourcePath": "$.phoneNumbers[?(@.type == 'work')].value",
                "targetPath": "$.telephoneNumber",
                "optional": True,
            },
            {
                "sourcePath": "$.phoneNumbers[?(@.type == 'mobile')].value",
                "targetPath": "$.mobile",
                "optional": True,
                "functions": [
                    {"type": "replaceAllString", "regex": "[\\s\\p{Punct}]", "replacement": ""}
                ],
            },
            {
                "sourcePath": "$.addresses",
                "targetPath": "$.addresses",
                "optional": True,
                "preserveArrayWithSingleElement": True,
                "functions": [
                    {"type": "putIfAbsent", "key": "type", "defaultValue": "work"},
                    {
                        "type": "convertCountryCode",
                        "outputFormat": "alpha2",
                        "inputAttributes": ["country"],
                        "outputAttribute": "country",
                    },
                ],
            },
            {"sourcePath": "$.title", "targetPath": "$.title", "optional": True},
            {
                "type": "valueMapping",
                "sourcePath": "$.userType",
                "targetPath": "$.userType",
                "defaultValue": "employee",
                "valueMappings": [
                    {"key": ["Employee"], "mappedValue": "employee"},
                    {"key": ["Contractor"], "mappedValue": "external"},
                    {"key": ["Intern"], "mappedValue": "student"},
                ],
            },
            {
                "sourcePath": "$.active",
                "targetPath": "$.active",
                "optional": True,
                "defaultValue": True,
            },
            {
                "sourcePath": "$.preferredLanguage",
                "targetPath": "$.language",
                "optional": True,
                "functions": [
                    {"type": "substring", "beginIndex": 0, "endIndex": 2},
                    {"type": "toUpperCaseString"},
                ],
            },
            {"sourcePath": "$.locale", "targetPath": "$.locale", "optional": True},
            {
                "sourcePath": "$.timezone",
                "targetPath": "$.timeZone",
                "optional": True,
                "functions": [{"type": "convertTimezoneCode", "outputFormat": "sap"}],
            },
            {
                "sourcePath": f"$['{ENTERPRISE}']['employeeNumber']",
                "targetPath": f"$['{ENTERPRISE}']['employeeNumber']",
            },
            {
                "sourcePath": f"$['{ENTERPRISE}']['costCenter']",
                "targetPath": f"$['{ENTERPRISE}']['costCenter']",
                "optional": True,
            },
            {
                "sourcePath": f"$['{ENTERPRISE}']['department']",
                "targetPath": f"$['{ENTERPRISE}']['department']",
                "optional": True,
            },
            {
                "condition": f"$['{ENTERPRISE}']['division'] IN ['EMEA', 'AMER']",
                "sourcePath": f"$['{ENTERPRISE}']['division']",
                "targetPath": f"$['{ENTERPRISE}']['division']",
            },
            {
                "sourcePath": f"$['{ENTERPRISE}']['manager']['value']",
                "targetPath": f"$['{ENTERPRISE}']['manager']['value']",
                "optional": True,
                "functions": [{"type": "resolveEntityIds"}],
            },
            {
                "sourcePath": "$.groups[*].value",
                "targetPath": "$.memberOf[?(@.value)]",
                "optional": True,
                "preserveArrayWithSingleElement": True,
            },
            {
                "sourcePath": f"$['{CUSTOM}']['attributes'][?(@.name=='customAttribute1')].value",
                "targetPath": "$.badge",
                "optional": True,
            },
            {
                "sourcePath": "$.hireDate",
                "targetPath": "$.startDate",
                "optional": True,
                "functions": [
                    {
                        "type": "manipulateDate",
                        "sourceDateFormat": "yyyy-MM-dd",
                        "targetDateFormat": "dd.MM.yyyy",
                    }
                ],
            },
            {"sourcePath": f"$['{SAP}']['validTo']", "targetVariable": "validTo", "optional": True},
            {
                "condition": "$.userType == 'Contractor'",
                "constant": "${validTo}",
                "targetPath": "$.expires",
            },
            {"constant": [{"id": "grp-all"}], "targetVariable": "assignGroup"},
            {
                "sourcePath": "$.name.formatted",
                "targetPath": "$.cn",
                "optional": True,
                "functions": [{"type": "replaceString", "target": " ", "replacement": "_"}],
            },
        ],
    }
}


class Resolver:
    """Operational data as a dictionary: source id -> target id."""

    def resolve(
        self,
        ids: Sequence[str],
        *,
        entity_type: str,
        source_system: str | None,
        target_system: str | None,
    ) -> dict[str, str]:
        return {i: "T-" + i for i in ids}


def measure(
    name: str,
    step: Callable[[dict[str, Any]], Any],
    users: list[dict[str, Any]],
    failures: list[str],
) -> dict[str, Any]:
    for user in users[:1000]:
        step(user)
    durations = []
    clock = time.perf_counter
    failed = 0
    started = clock()
    for user in users:
        before = clock()
        outcome = step(user)
        durations.append(clock() - before)
        if not isinstance(outcome, Transformed):
            failed += 1
            if len(failures) < 3:
                failures.append(repr(outcome))
    elapsed = clock() - started
    durations.sort()
    rate = len(users) / elapsed
    return {
        "name": name,
        "entities": len(users),
        "seconds": round(elapsed, 3),
        "entities_per_second": round(rate),
        "p50_us": round(statistics.median(durations) * 1e6, 1),
        "p99_us": round(durations[int(len(durations) * 0.99)] * 1e6, 1),
        "not_transformed": failed,
        "target_met": rate >= TARGET,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    users = [make_user(i, rng) for i in range(args.users)]
    size = sum(len(json.dumps(u)) for u in users[:1000]) / min(1000, len(users))

    started = time.perf_counter()
    scim_write = Transformation(default_transformation("scim", "write"))
    realistic = Transformation(REALISTIC_30, {"display.suffix": "(EXT)"})
    lid_read = Transformation(default_transformation("local-identity-directory", "read"))
    lid_write = Transformation(default_transformation("local-identity-directory", "write"))
    compile_ms = (time.perf_counter() - started) * 1000 / 4
    resolver = Resolver()
    target = {"entityIdTargetSystem": "T-1"}
    failures: list[str] = []

    def realistic_step(user: dict[str, Any]) -> Any:
        return realistic.apply(
            "user", user, operation="update", variables=dict(target), resolver=resolver
        )

    def lid_step(user: dict[str, Any]) -> Any:
        read = lid_read.apply("user", user)
        assert isinstance(read, Transformed)
        return lid_write.apply(
            "user", read.document, operation="update", variables=dict(target), resolver=resolver
        )

    results = [
        measure(
            "scim-write",
            lambda u: scim_write.apply("user", u, operation="update", variables=dict(target)),
            users,
            failures,
        ),
        measure("realistic-30", realistic_step, users, failures),
        measure("lid-read+write", lid_step, users, failures),
    ]
    report = {
        "users": args.users,
        "avg_user_bytes": round(size),
        "python": sys.version.split()[0],
        "compile_ms_per_document": round(compile_ms, 2),
        "target": TARGET,
        "results": results,
        "failures": failures,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{args.users:,} users (~{size:,.0f} bytes of JSON each), Python {report['python']}, "
        f"one core; compile {compile_ms:.1f} ms per document"
    )
    print(f"{'document':<16}{'entities/s':>12}{'p50 µs':>10}{'p99 µs':>10}{'seconds':>10}  target")
    for r in results:
        mark = "met" if r["target_met"] else "NOT met"
        print(
            f"{r['name']:<16}{r['entities_per_second']:>12,}{r['p50_us']:>10}{r['p99_us']:>10}"
            f"{r['seconds']:>10}  ≥{TARGET:,} {mark}"
        )
        if r["not_transformed"]:
            print(f"  {r['not_transformed']} entities not transformed, e.g. {failures[:1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
