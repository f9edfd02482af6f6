"""Issue 17, item 3: tenant A's credentials never reach tenant B's data. The walk calls every
operation of the OpenAPI document under ``/t/a`` with a's credentials and b's ids, and
expects 404 and not a byte of b's data; a's credentials (secret, bearer token, client
certificate) are refused at b's addresses and at the default tenant's; ``Host:`` names a
tenant when a tenant domain is set."""

from __future__ import annotations

import itertools
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from provisor.context import DEFAULT_TENANT
from provisor.settings import Settings
from tests.certs.conftest import self_signed
from tests.conftest import LiveServer, serve
from tests.connectors.scim_peers import SCIM2Server, scim2_server
from tests.helpers import GROUP, USER, user_body
from tests.tenancy import PROXY, PUSH, Tenant, create_tenant, run_queued

pytestmark = pytest.mark.slow  # live servers on loopback

DOMAIN = "tenants.test"
CUSTOM = "urn:sap:cloud:scim:schemas:extension:custom:2.0:"
CERT_HEADER = "X-Forwarded-Client-Cert"
NOT_FOUND = 404


@pytest.fixture
def peers() -> Iterator[dict[str, SCIM2Server]]:
    """A SCIM server of each tenant's target system."""
    with scim2_server() as a, scim2_server() as b, scim2_server() as default:
        yield {"a": a, "b": b, "default": default}


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    """A server (SQLite, then PostgreSQL) with a tenant domain, loopback as a trusted reverse
    proxy (client certificates in a header), no budgets: the walk makes hundreds of calls."""
    with serve(
        settings.model_copy(
            update={
                "tenant_domain": DOMAIN,
                "trusted_proxies": ["127.0.0.1"],
                "auth_failures_per_minute": 0,
                "inbound_throttle_per_minute": 0,
                "inbound_max_per_minute": 0,
            }
        )
    ) as server:
        yield server


# -- each tenant's data, made through its own admin over HTTP -------------------------------------


@dataclass
class Estate:
    """What one tenant holds, with the ids the walk substitutes and the texts (names, ids,
    URLs, certificates) that must never reach another tenant."""

    tenant: Tenant
    word: str  # in the names of its things: Alpha, Bravo
    ids: dict[str, list[str]] = field(default_factory=dict)
    texts: set[str] = field(default_factory=set)
    robot: tuple[str, str] = ("", "")
    robot_cert: str = ""  # PEM of a certificate attached to the robot

    def add(self, kind: str, *values: str) -> None:
        self.ids.setdefault(kind, []).extend(values)
        self.texts.update(values)

    def one(self, kind: str) -> str:
        return self.ids[kind][0]


def created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code in (200, 201, 202), (answer.request.url, answer.text)
    body: dict[str, Any] = answer.json()
    return body


def pem(cert: Any) -> str:
    return str(cert.public_bytes(serialization.Encoding.PEM).decode())


def build_estate(live: LiveServer, tenant: Tenant, peer: SCIM2Server) -> Estate:
    """Users, a group, a custom schema, source/target/proxy systems, a new transformation
    version, a schedule, a job run with its logs, a real-time push and its log, a technical
    user with a generated and an attached certificate, a system's inbound certificate and a
    target's outbound certificate, all named after the tenant."""
    word = {"a": "Alpha", "b": "Bravo"}.get(tenant.name, tenant.name.title())
    estate = Estate(tenant, word)
    token = uuid.uuid4().hex[:6]
    with tenant.client(live.url) as http:
        user = created(http.post("/scim/Users", json=user_body(f"{word.lower()}-user-{token}")))
        estate.add("user", user["id"])
        estate.texts.add(user["userName"])
        group = created(
            http.post(
                "/scim/Groups",
                json={
                    "schemas": [GROUP],
                    "displayName": f"{word}-group-{token}",
                    "members": [{"value": user["id"]}],
                },
            )
        )
        estate.add("group", group["id"])
        estate.texts.add(group["displayName"])
        schema = f"{CUSTOM}{word}Badge"
        created(
            http.post(
                "/scim/Schemas",
                json={
                    "id": schema,
                    "name": f"{word}Badge",
                    "attributes": [{"name": f"{word.lower()}Number", "type": "string"}],
                },
            )
        )
        estate.add("schema", schema)

        api = "/api/v1"
        source = created(
            http.post(
                f"{api}/systems",
                json={
                    "name": f"{word}-source",
                    "type": "local-identity-directory",
                    "role": "source",
                },
            )
        )
        target = created(
            http.post(
                f"{api}/systems",
                json={
                    "name": f"{word}-target",
                    "type": "scim",
                    "role": "target",
                    "sourceSystemIds": [source["id"]],
                    "properties": {"URL": peer.url, "Authentication": "NoAuthentication"},
                },
            )
        )
        proxy = created(
            http.post(
                f"{api}/systems",
                json={
                    "name": f"{word}-proxy",
                    "type": "local-identity-directory",
                    "role": "proxy",
                },
            )
        )
        estate.add("source", source["id"])
        estate.add("target", target["id"])
        estate.add("proxy", proxy["id"])
        estate.add("system name", source["name"], target["name"], proxy["name"])
        estate.texts.add(peer.url)

        write = f"{api}/systems/{target['id']}/transformations/write"
        document = created(http.get(write))["document"]
        saved = created(http.put(write, json={"document": document, "description": f"{word} edit"}))
        assert saved["version"] == 2
        created(http.put(f"{api}/systems/{source['id']}/schedule", json={"intervalMinutes": 45}))

        job = created(http.post(f"{api}/systems/{source['id']}/jobs", json={"type": "READ"}))
        done = run_queued(live.services, tenant.name, job["id"])
        assert done.status.value == "Success", done
        estate.add("job", job["id"])

        entity = created(http.get(f"/scim/Users/{user['id']}"))
        pushed = http.put(f"{PUSH}/{source['id']}/entities/user/{user['id']}", json=entity)
        assert pushed.status_code == 200, pushed.text
        logs = created(http.get(f"{api}/realtime-logs"))["items"]
        assert len(logs) == 1
        estate.add("realtime log", logs[0]["id"])

        robot = created(
            http.post(
                f"{api}/clients",
                json={"name": f"{word}-robot", "permissions": ["manage_users"]},
            )
        )
        estate.robot = (robot["clientId"], robot["clientSecret"])
        estate.add("client", robot["clientId"])
        estate.add("client name", robot["name"])
        estate.add("client", created(http.get(f"{api}/me"))["clientId"])
        person = created(
            http.post(f"{api}/administrators", json={"name": f"{word}-person", "role": "viewer"})
        )
        estate.add("administrator", person["name"])
        estate.texts.add(person["id"])
        generated = http.post(
            f"{api}/clients/{robot['clientId']}/certificates/generate",
            json={"commonName": f"{word} robot", "password": "correct horse"},
        )
        assert generated.status_code in (200, 201), generated.text
        estate.add("inbound fingerprint", generated.headers["X-Certificate-Fingerprint"])
        cert, _ = self_signed(f"{word} robot attached")
        estate.robot_cert = pem(cert)
        attached = created(
            http.post(
                f"{api}/clients/{robot['clientId']}/certificates",
                content=estate.robot_cert.encode(),
                headers={"Content-Type": "application/octet-stream"},
            )
        )
        estate.add("inbound fingerprint", attached["fingerprint"])
        system_cert, _ = self_signed(f"{word} source caller")
        on_system = created(
            http.post(
                f"{api}/systems/{source['id']}/inbound-certificates",
                content=pem(system_cert).encode(),
                headers={"Content-Type": "application/octet-stream"},
            )
        )
        estate.add("inbound fingerprint", on_system["fingerprint"])
        outbound = created(http.post(f"{api}/systems/{target['id']}/outbound-certificates"))
        estate.add("outbound fingerprint", outbound["fingerprint"])
        subscribed = created(
            http.post(
                f"{api}/notifications/subscriptions",
                json={
                    "topic": "job",
                    "system": source["id"],
                    "channel": "email",
                    "name": f"{word} Ops",
                    "address": f"{word.lower()}-ops@example.org",
                },
            )
        )
        estate.add("subscription", subscribed["id"])
        estate.texts.add(subscribed["address"])
        ca = http.get(f"{api}/certificates/ca")
        assert ca.status_code == 200
        estate.texts.add(ca.text.strip())
    return estate


# -- the walk -------------------------------------------------------------------------------------

SEARCH = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
PATCH_OP: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "displayName", "value": "walked"}],
}

# Path parameters naming something a tenant owns: b's values are substituted for them.
OWNED: dict[str, tuple[str, ...]] = {
    "system_id": ("source", "target", "proxy", "system name"),
    "job_id": ("job",),
    "resource_id": ("user", "group"),
    "schema_id": ("schema",),
    "client_id": ("client", "client name"),
    "fingerprint": ("inbound fingerprint", "outbound fingerprint"),
    "log_id": ("realtime log",),
    "administrator": ("administrator",),
    "entity_id": ("user", "group"),
    "subscription_id": ("subscription",),
}
# Path parameters naming something every tenant has (a connector type, an endpoint...).
COMMON: dict[str, str] = {
    "type_id": "scim",
    "kind": "write",
    "version": "1",
    "endpoint": "Users",
    "entity_type": "user",
    "job_type": "READ",
}
# A parent's (a's) own value with a child of b: the child must be looked up in a's tenant too.
PARENTS = ("system_id", "client_id")
CHILDREN = ("fingerprint", "resource_id", "schema_id")
PARENT_KINDS = {"system_id": ("source", "target", "proxy"), "client_id": ("client",)}


def _body(method: str, path: str) -> dict[str, Any]:
    """The request body that would succeed if the ids were the caller's: so a 404 is the
    lookup's, not the body's validation."""
    if method in ("GET", "DELETE"):
        return {}
    if path.endswith(("/inbound-certificates", "/certificates")):
        cert, _ = self_signed("walker")
        return {"content": pem(cert).encode(), "headers": {"content-type": "application/pem"}}
    if method == "PATCH":
        if "/api/v1/administrators/" in path:
            return {"json": {"role": "viewer"}}
        if "/api/v1/clients/" in path:
            return {"json": {"description": "walked"}}
        if "/api/v1/systems/" in path:
            key = "properties" if path.endswith("/properties") else "description"
            return {"json": {key: {} if key == "properties" else "walked"}}
        return {"json": PATCH_OP}
    bodies: dict[str, Any] = {
        "/certificates/generate": {"commonName": "walker", "password": "walker pass"},
        "/rotate-secret": {"keepPrevious": False},
        "/schedule": {"intervalMinutes": 45},
        "/jobs": {"type": "READ"},
        "/validate": {"users": []},
        "/confirm-deletions": {},
        "/reset": {"to": "initial"},
        "/auto-regeneration": {"enabled": False},
        "/outbound-certificates": {},
        "/properties": {"properties": {}},
        "/transformations/{kind}": {"document": {"user": {"mappings": []}}, "description": "w"},
        "/.search": SEARCH,
    }
    for ending, body in bodies.items():
        if path.endswith(ending):
            return {"json": body}
    if path.endswith(("/systems/{system_id}/reset", "/apply")):
        return {}
    if path.startswith("/scim/Groups/"):
        return {"json": {"schemas": [GROUP], "displayName": "walkers"}}
    if "/ipsproxy/" in path or path.startswith("/scim/"):
        return {"json": user_body("walker", id="walker")}
    return {}


QUERIES = {"/ips/service/publicapi/v1/jobLogs/{job_id}": {"action": "export"}}


# Operations walked with b's ids that answer another status than 404, and why.
NOT_404: dict[tuple[str, str], tuple[set[int], str]] = {}

# Operations without a path parameter of a tenant's: what the walk does with them, and why.
LISTINGS = "a listing or a search: a's answer (200) holds nothing of b"
ACTION = "an action on the caller's own tenant: called last, b unchanged afterwards"
CREATES = "creates in the caller's tenant: b's names are created in a (names are per tenant)"
PUBLIC = "public: no tenant data"
UNPARAMETERISED: dict[tuple[str, str], str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("POST", "/oauth2/token"): "tokens: test_credentials_of_a_are_refused_elsewhere",
    ("GET", "/api/v1/me"): LISTINGS,
    ("GET", "/scim/ServiceProviderConfig"): LISTINGS,
    ("GET", "/scim/ResourceTypes"): LISTINGS,
    ("GET", "/scim/ResourceTypes/{name}"): LISTINGS,  # {name}: User
    ("GET", "/scim/Schemas"): LISTINGS,
    ("POST", "/scim/Schemas"): CREATES,
    ("POST", "/scim/.search"): LISTINGS,
    ("GET", "/scim/Users"): LISTINGS,
    ("POST", "/scim/Users"): CREATES,
    ("POST", "/scim/Users/.search"): LISTINGS,
    ("GET", "/scim/Groups"): LISTINGS,
    ("POST", "/scim/Groups"): CREATES,
    ("POST", "/scim/Groups/.search"): LISTINGS,
    ("GET", "/scim/Me"): "not implemented (501) for every caller",
    ("PUT", "/scim/Me"): "not implemented (501) for every caller",
    ("POST", "/scim/Me"): "not implemented (501) for every caller",
    ("DELETE", "/scim/Me"): "not implemented (501) for every caller",
    ("PATCH", "/scim/Me"): "not implemented (501) for every caller",
    ("POST", "/scim/Bulk"): "a's own operations in a's tenant (bulkId references are per request)",
    ("GET", "/api/v1/connector-types"): LISTINGS,
    ("GET", "/api/v1/connector-types/{type_id}"): LISTINGS,
    ("GET", "/api/v1/connector-types/{type_id}/transformations/{name}"): LISTINGS,
    ("GET", "/api/v1/systems"): LISTINGS,
    ("POST", "/api/v1/systems"): CREATES,
    ("POST", "/api/v1/systems/import"): "a's own export document imported into a's tenant",
    ("GET", "/api/v1/jobs"): LISTINGS,
    ("DELETE", "/api/v1/jobs"): ACTION,
    ("GET", "/api/v1/job-runners"): LISTINGS,
    ("GET", "/api/v1/job-settings"): LISTINGS,
    ("PUT", "/api/v1/job-settings"): ACTION,
    ("POST", "/api/v1/tenant/reset"): ACTION,
    ("GET", "/api/v1/schedules"): LISTINGS,
    ("GET", "/api/v1/certificates/ca"): LISTINGS,
    ("GET", "/api/v1/certificates/events"): LISTINGS,
    ("POST", "/api/v1/certificates/maintain"): LISTINGS,  # a dry run without ?apply
    ("GET", "/api/v1/inbound-certificates"): LISTINGS,
    ("GET", "/api/v1/clients"): LISTINGS,
    ("POST", "/api/v1/clients"): CREATES,
    ("GET", "/api/v1/administrators"): LISTINGS,
    ("POST", "/api/v1/administrators"): CREATES,
    ("GET", "/api/v1/console/sso"): "the caller's tenant's own single sign-on (no id: 404 "
    "until a sets its own, tests/console/test_sso.py checks one tenant's is not another's)",
    ("PUT", "/api/v1/console/sso"): ACTION,
    ("DELETE", "/api/v1/console/sso"): ACTION,
    ("GET", "/api/v1/realtime-logs"): LISTINGS,
    ("GET", "/api/v1/configuration"): LISTINGS,  # a's configuration as one document
    ("POST", "/api/v1/configuration/plan"): ACTION,
    ("POST", "/api/v1/configuration/apply"): ACTION,
    ("GET", "/api/v1/bundles"): LISTINGS,
    ("GET", "/api/v1/bundles/{name}"): LISTINGS,  # the installation's templates
    ("GET", "/api/v1/notifications/subscriptions"): LISTINGS,
    ("POST", "/api/v1/notifications/subscriptions"): CREATES,
    ("GET", "/api/v1/notifications/deliveries"): LISTINGS,
}
# Query parameters naming something a tenant owns: each listing is asked with b's values.
OWNED_QUERIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("/api/v1/jobs", "source"): ("source", "system name"),
    ("/api/v1/certificates/events", "system"): ("source", "target", "proxy", "system name"),
    ("/api/v1/realtime-logs", "source"): ("source", "system name"),
    ("/api/v1/realtime-logs", "entityId"): ("user",),
    ("/scim/Users", "startId"): ("user",),
    ("/scim/Groups", "startId"): ("group",),
    ("/api/v1/notifications/subscriptions", "system"): ("source", "system name"),
    ("/api/v1/notifications/deliveries", "subscription"): ("subscription",),
}
# Query parameters that name nothing of a tenant's (SCIM filters: FILTERS below).
PLAIN_QUERIES = {
    "filter", "sortBy", "sortOrder", "startIndex", "count", "attributes", "excludedAttributes",
    "role", "type", "enabled", "offset", "limit", "status", "format", "name", "entityType",
    "action", "logType", "chain", "since", "at", "apply", "startId", "prune", "expect",
    "search", "after", "topic",
}  # fmt: skip
# SCIM filters naming b's users and groups, on a's directory and a's proxy.
FILTERS = (
    ("Users", 'id eq "{user}"'),
    ("Users", 'userName eq "{user_name}"'),
    ("Users", 'groups.value eq "{group}"'),
    ("Users", 'emails.value eq "{user_name}@example.com"'),
    ("Groups", 'id eq "{group}"'),
    ("Groups", 'members.value eq "{user}"'),
    ("Groups", 'displayName eq "{group_name}"'),
)
FIXED_VALUES = {"name": "User", "type_id": "scim"}
NAMES = {  # {name} where it is not a resource type's
    "/api/v1/connector-types/{type_id}/transformations/{name}": "read",
    "/api/v1/bundles/{name}": "directory-to-ldap-and-scim",
}  # connector-types' {name}: "read" below


@dataclass(frozen=True)
class Call:
    method: str
    template: str
    url: str
    used: tuple[str, ...]  # the values substituted into the path


def _params(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
    return path


def walked_calls(
    spec: dict[str, Any], a: Estate, b: Estate, methods: tuple[str, ...] | None = None
) -> list[Call]:
    """Every call of the walk: each operation with b's values for every owned parameter
    (all combinations), and with a's parent and b's child where it has both (``a is b``:
    the same calls with a's own values, ``methods`` only)."""
    calls = []
    for template, operations in spec["paths"].items():
        names = _params(template)
        owned = [n for n in names if n in OWNED]
        if not owned or template.startswith("/operator"):
            continue
        unknown = [n for n in names if n not in OWNED and n not in COMMON and n != "name"]
        assert not unknown, f"{template}: which tenant's value is {unknown}? Add it to OWNED"
        fixed = {n: COMMON.get(n, "User") for n in names if n not in OWNED}
        choices = [[v for kind in OWNED[n] for v in b.ids.get(kind, [])] for n in owned]
        if a is b:  # a proxy's schemas are its back-end's: the core ones
            choices = [
                [*c, USER] if n == "schema_id" else c for n, c in zip(owned, choices, strict=True)
            ]
        crossed: list[list[str]] = []
        parent = next((n for n in owned if n in PARENTS), None)
        if parent is not None and a is not b and any(n in CHILDREN for n in owned):
            crossed = [
                [v for kind in PARENT_KINDS[n] for v in a.ids[kind]] if n == parent else c
                for n, c in zip(owned, choices, strict=True)
            ]
        for method in operations:
            if methods is not None and method.upper() not in methods:
                continue
            for combination in [choices, crossed] if crossed else [choices]:
                for values in itertools.product(*combination):
                    given = dict(zip(owned, values, strict=True))
                    calls.append(
                        Call(method.upper(), template, _fill(template, fixed | given), values)
                    )
    return calls


def leaked(answer: httpx.Response, b: Estate, sent: tuple[str, ...]) -> list[str]:
    """b's texts in an answer, except those the caller sent (an echo of the request's own
    path tells nothing)."""
    seen = answer.text + " " + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
    return sorted(t for t in b.texts - set(sent) if t in seen)


def _known(method: str, template: str) -> bool:
    return (
        template.startswith("/operator")
        or any(n in OWNED for n in _params(template))
        or (method, template) in UNPARAMETERISED
    )


def test_every_operation_is_walked_or_explained(sqlite_server: LiveServer) -> None:
    """A new operation fails here until the walk knows it: with a parameter of OWNED it is
    walked, else UNPARAMETERISED says what the walk does with it; a new query parameter
    until OWNED_QUERIES or PLAIN_QUERIES has it."""
    spec = httpx.get(sqlite_server.url + "/openapi.json").json()
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert len(operations) > 100
    assert sorted(o for o in operations if not _known(*o)) == []
    assert sorted(set(UNPARAMETERISED) - operations) == [], "no longer in the API"
    assert sorted(set(NOT_404) - operations) == [], "no longer in the API"
    queries = {
        (p, q["name"])
        for p, ops in spec["paths"].items()
        for op in ops.values()
        for q in op.get("parameters", [])
        if q["in"] == "query" and not p.startswith("/operator")
    }
    unknown = {q for q in queries if q not in OWNED_QUERIES and q[1] not in PLAIN_QUERIES}
    assert sorted(unknown) == [], "a query parameter naming a tenant's thing: OWNED_QUERIES"


@pytest.mark.parametrize("walker", ["a", DEFAULT_TENANT])
def test_a_walks_every_route_with_b_ids(
    live: LiveServer, peers: dict[str, SCIM2Server], walker: str
) -> None:
    """The walker is tenant a (under /t/a), or the default tenant (the installation's own
    URLs, its initial admin)."""
    if walker == DEFAULT_TENANT:
        tenant_a = Tenant(DEFAULT_TENANT, live.admin)
    else:
        tenant_a = create_tenant(live.services, walker)
    tenant_b = create_tenant(live.services, "b")
    a = build_estate(live, tenant_a, peers[walker])
    b = build_estate(live, tenant_b, peers["b"])
    spec = httpx.get(live.url + "/openapi.json").json()
    problems: list[str] = []

    def check(answer: httpx.Response, expected: set[int], sent: tuple[str, ...] = ()) -> None:
        request = f"{answer.request.method} {answer.request.url.raw_path.decode()}"
        if answer.status_code not in expected:
            problems.append(f"{request}: {answer.status_code} {answer.text[:300]}")
        leak = leaked(answer, b, sent)
        if leak:
            problems.append(f"{request}: b's {leak} in the answer {answer.text[:300]}")

    calls = walked_calls(spec, a, b)
    assert len(calls) > 300
    with tenant_a.client(live.url) as http:
        for call in calls:
            allowed = NOT_404.get((call.method, call.template), (set(), ""))[0]
            query = QUERIES.get(call.template)
            request = _body(call.method, call.template)
            answer = http.request(call.method, call.url, params=query, **request)
            check(answer, {NOT_FOUND} | allowed, call.used)

        for (method, template), reason in sorted(UNPARAMETERISED.items()):
            if reason == LISTINGS:
                values = FIXED_VALUES | ({"name": NAMES[template]} if template in NAMES else {})
                body: dict[str, Any] = {"json": SEARCH} if template.endswith(".search") else {}
                check(http.request(method, _fill(template, values), **body), {200})

        for (template, parameter), kinds in OWNED_QUERIES.items():
            for value in (v for kind in kinds for v in b.ids[kind]):
                answer = http.get(template, params={parameter: value})
                check(answer, {200, 404}, (value,))
                if answer.status_code == 200 and parameter != "startId":  # a cursor: a's next
                    listed = answer.json()
                    found = listed.get("items", listed.get("events", listed.get("Resources")))
                    assert found == [], (template, parameter, listed)

        names = {
            "user": b.one("user"),
            "group": b.one("group"),
            "user_name": next(t for t in b.texts if t.startswith("bravo-user-")),
            "group_name": next(t for t in b.texts if t.startswith("Bravo-group-")),
        }
        for endpoint, pattern in FILTERS:
            scim_filter = pattern.format(**names)
            for base in ("/scim", f"{PROXY}/{a.one('proxy')}"):
                answer = http.get(f"{base}/{endpoint}", params={"filter": scim_filter})
                check(answer, {200}, tuple(names.values()))
                assert answer.json()["totalResults"] == 0, (base, scim_filter, answer.text)
                search = http.post(
                    f"{base}/{endpoint}/.search", json={**SEARCH, "filter": scim_filter}
                )
                check(search, {200}, tuple(names.values()))
                assert search.json()["totalResults"] == 0, (base, scim_filter, search.text)

        # b's users and groups are no members for a's groups (and a's group none of b's)
        with_b: dict[str, Any] = {"schemas": [GROUP], "displayName": "mixed", "members": []}
        for kind in ("user", "group"):
            with_b["members"] = [{"value": b.one(kind)}]
            check(http.post("/scim/Groups", json=with_b), {400, 404}, (b.one(kind),))
            add = {
                "schemas": [PATCH_OP["schemas"][0]],
                "Operations": [{"op": "add", "path": "members", "value": with_b["members"]}],
            }
            a_group = f"/scim/Groups/{a.one('group')}"
            check(http.patch(a_group, json=add), {400, 404}, (b.one(kind),))
        bulk = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "PATCH", "path": f"/Users/{b.one('user')}", "data": PATCH_OP},
                {"method": "DELETE", "path": f"/Groups/{b.one('group')}"},
                {"method": "PUT", "path": f"/Users/{b.one('user')}", "data": user_body("x")},
            ],
        }
        answer = http.post("/scim/Bulk", json=bulk)
        check(answer, {200}, (b.one("user"), b.one("group")))
        assert [o["status"] for o in answer.json()["Operations"]] == ["404"] * 3

        for template, operations in spec["paths"].items():
            if template.startswith("/operator"):  # the installation's: never a tenant's
                url = _fill(template, {n: "b" for n in _params(template)})
                for method in operations:
                    check(http.request(method.upper(), url, json={}), {401, 403, 404})
                    outside = httpx.request(method.upper(), live.url + url, auth=tenant_a.admin)
                    check(outside, {401})

        # the control: a's own values reach the same routes, so b's 404s are lookups failing
        reached: dict[str, set[int]] = {}
        for call in walked_calls(spec, a, a, methods=("GET",)):
            answer = http.get(call.url, params=QUERIES.get(call.template))
            reached.setdefault(call.template, set()).add(answer.status_code)
        missed = {t: codes for t, codes in reached.items() if 200 not in codes}
        assert missed == {}, "a's own values should find something on every GET route"

        # b's sources are no sources for a's targets
        for value in b.ids["source"] + ["Bravo-source"]:
            linked = {
                "name": "Linked",
                "type": "scim",
                "role": "target",
                "sourceSystemIds": [value],
                "properties": {"URL": peers[walker].url, "Authentication": "NoAuthentication"},
            }
            check(http.post("/api/v1/systems", json=linked), {400, 404}, (value,))
            relink = {"sourceSystemIds": [a.one("source"), value]}
            check(
                http.patch(f"/api/v1/systems/{a.one('target')}", json=relink), {400, 404}, (value,)
            )
        exported = http.get(f"/api/v1/systems/{a.one('target')}/export").json()
        exported["sourceSystems"] = [{"id": b.one("source"), "name": "Bravo-source"}]
        imported = http.post("/api/v1/systems/import", params={"name": "Imp"}, json=exported)
        check(imported, {201}, (b.one("source"), "Bravo-source"))
        assert imported.json()["sourceSystemIds"] == [], "not linked: b's source is not here"
        assert imported.json()["warnings"], "the import says the source was not found"

        # a's whole configuration, planned and applied again: nothing of b's
        document = http.get("/api/v1/configuration").json()
        for step in ("plan", "apply"):
            answer = http.post(
                f"/api/v1/configuration/{step}", params={"prune": "true"}, json=document
            )
            check(answer, {200})
        for system in document["systems"]:  # a target of b's source: it is not a's
            if system.get("role") == "target":
                system["sourceSystems"] = ["Bravo-source"]
        answer = http.post("/api/v1/configuration/plan", json=document)
        check(answer, {400, 404, 409}, ("Bravo-source",))

        # b's names are free in a: names are unique per tenant
        same_user = user_body(next(t for t in b.texts if t.startswith("bravo-user-")))
        assert http.post("/scim/Users", json=same_user).status_code == 201
        same_group = {"schemas": [GROUP], "displayName": names["group_name"]}
        assert http.post("/scim/Groups", json=same_group).status_code == 201
        schema: dict[str, Any] = {"id": b.one("schema"), "name": "BravoBadge", "attributes": []}
        schema["attributes"] = [{"name": "bravoNumber", "type": "string"}]
        assert http.post("/scim/Schemas", json=schema).status_code == 201
        named = {"name": "Bravo-source", "type": "local-identity-directory", "role": "source"}
        assert http.post("/api/v1/systems", json=named).status_code == 201
        robot = {"name": "Bravo-robot", "permissions": ["manage_users"]}
        assert http.post("/api/v1/clients", json=robot).status_code == 201

        # a's actions on its own tenant leave b's alone
        assert http.put("/api/v1/job-settings", json={"logRetentionDays": 30}).status_code == 200
        assert http.delete("/api/v1/jobs").status_code == 200
        reset = http.post("/api/v1/tenant/reset", json={"confirm": True})
        assert reset.status_code == 200, reset.text

    assert problems == [], "\n".join(problems)
    assert_intact(live, b, peers["b"])
    mine = {t for t in a.texts if t.startswith(f"{a.word.lower()}-user-")}
    assert set(users_of(peers[walker])) == mine


def users_of(peer: SCIM2Server) -> list[str]:
    with httpx.Client(base_url=peer.url) as client:
        return [u["userName"] for u in client.get("/Users").json()["Resources"]]


def assert_intact(live: LiveServer, b: Estate, peer: SCIM2Server) -> None:
    """Everything b made is still there, unchanged by a's walk."""
    with b.tenant.client(live.url) as http:
        for kind, endpoint in (("user", "Users"), ("group", "Groups"), ("schema", "Schemas")):
            assert http.get(f"/scim/{endpoint}/{b.one(kind)}").status_code == 200, kind
        group = http.get(f"/scim/Groups/{b.one('group')}").json()
        assert [m["value"] for m in group["members"]] == [b.one("user")]
        assert http.get("/scim/Users").json()["totalResults"] == 1
        api = "/api/v1"
        for kind in ("source", "target", "proxy"):
            system = http.get(f"{api}/systems/{b.one(kind)}")
            assert system.status_code == 200 and system.json()["enabled"] is True, kind
            assert system.json()["description"] == ""
        write = http.get(f"{api}/systems/{b.one('target')}/transformations/write").json()
        assert write["version"] == 2
        assert http.get(f"{api}/systems/{b.one('source')}/schedule").json()["enabled"] is True
        job = http.get(f"{api}/jobs/{b.one('job')}").json()
        assert job["status"] == "Success"
        created = http.get(f"{api}/jobs/{b.one('job')}/entities").json()
        assert created["total"] >= 2
        assert http.get(f"{api}/realtime-logs/{b.one('realtime log')}").status_code == 200
        assert http.get(f"{api}/job-settings").json()["logRetentionDays"] == 7
        clients = {c["clientId"] for c in http.get(f"{api}/clients").json()["items"]}
        assert clients == set(b.ids["client"])
        fingerprints = {
            c["fingerprint"] for c in http.get(f"{api}/inbound-certificates").json()["certificates"]
        }
        assert fingerprints == set(b.ids["inbound fingerprint"])
        outbound = f"{api}/systems/{b.one('target')}/outbound-certificates"
        assert http.get(f"{outbound}/{b.one('outbound fingerprint')}").status_code == 200
        assert http.get(f"{api}/systems/{b.one('target')}/properties").status_code == 200
    with b.tenant.client(live.url, auth=b.robot) as robot:  # its secret was not rotated
        assert robot.get("/api/v1/me").json()["name"] == "Bravo-robot"
    assert users_of(peer) == [t for t in b.texts if t.startswith("bravo-user-")]


# -- credentials stay in their tenant -------------------------------------------------------------


def _certificate_header(cert_pem: str) -> dict[str, str]:
    """The header a trusted TLS-terminating proxy sends (nginx's escaped PEM)."""
    return {CERT_HEADER: urllib.parse.quote(cert_pem)}


def test_credentials_of_a_are_refused_elsewhere(
    live: LiveServer, peers: dict[str, SCIM2Server]
) -> None:
    tenant_a = create_tenant(live.services, "a")
    tenant_b = create_tenant(live.services, "b")
    a = build_estate(live, tenant_a, peers["a"])
    with httpx.Client(base_url=live.url, timeout=60) as http:
        token = http.post(
            "/t/a/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=tenant_a.admin,
        )
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        elsewhere = ("/t/b", "")  # b's prefix, the default tenant's URLs
        ways: list[tuple[str, dict[str, Any]]] = [
            ("a's secret", {"auth": tenant_a.admin}),
            ("a's robot's secret", {"auth": a.robot}),
            ("a's token", {"headers": bearer}),
            ("a's robot's certificate", {"headers": _certificate_header(a.robot_cert)}),
        ]
        for what, credentials in ways:
            assert http.get("/t/a/api/v1/me", **credentials).json()["tenant"] == "a", what
            assert http.get("/t/a/scim/Users", **credentials).status_code == 200, what
            for prefix in elsewhere:
                for path in ("/api/v1/me", "/scim/Users", "/api/v1/systems"):
                    refused = http.get(prefix + path, **credentials)
                    assert refused.status_code == 401, (what, prefix + path, refused.text)
                    assert a.robot[0] not in refused.text
        # a token is asked for at a's address: a's secret gets none at b's or the default's
        for prefix in elsewhere:
            refused = http.post(
                f"{prefix}/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=tenant_a.admin,
            )
            assert refused.status_code == 401, refused.text
        # b's admin at a's address: refused too (both ways)
        assert http.get("/t/a/api/v1/me", auth=tenant_b.admin).status_code == 401
        # no address names every tenant or the installation's scope
        for prefix in ("/t/*", "/t/%2A", "/t/_installation", "/t/", "/t/A", "/t/a%2Fb"):
            for path in ("/api/v1/systems", "/scim/Users"):
                answer = http.get(prefix + path, auth=tenant_a.admin)
                assert answer.status_code == 404, (prefix, answer.text)
        for host in (f"*.{DOMAIN}", f"_installation.{DOMAIN}", f"x.a.{DOMAIN}"):
            answer = http.get("/api/v1/systems", headers={"Host": host}, auth=tenant_a.admin)
            assert answer.status_code in (401, 404), (host, answer.text)


def test_a_host_name_addresses_its_tenant(live: LiveServer, peers: dict[str, SCIM2Server]) -> None:
    tenant_a = create_tenant(live.services, "a")
    tenant_b = create_tenant(live.services, "b")
    a = build_estate(live, tenant_a, peers["a"])
    b = build_estate(live, tenant_b, peers["b"])
    with httpx.Client(base_url=live.url, timeout=60) as http:
        host_a = {"Host": f"a.{DOMAIN}"}
        me = http.get("/api/v1/me", headers=host_a, auth=tenant_a.admin)
        assert me.status_code == 200 and me.json()["tenant"] == "a"
        users = http.get("/scim/Users", headers=host_a, auth=tenant_a.admin).json()
        assert [u["id"] for u in users["Resources"]] == a.ids["user"]
        assert f"a.{DOMAIN}" in users["Resources"][0]["meta"]["location"]
        systems = http.get("/api/v1/systems", headers=host_a, auth=tenant_a.admin).json()
        assert {s["id"] for s in systems["items"]} == {
            a.one("source"),
            a.one("target"),
            a.one("proxy"),
        }
        for kind, path in (("user", "/scim/Users/"), ("source", "/api/v1/systems/")):
            missing = http.get(path + b.one(kind), headers=host_a, auth=tenant_a.admin)
            assert missing.status_code == 404 and not leaked(missing, b, (b.one(kind),))
        host_b = {"Host": f"b.{DOMAIN}"}
        assert http.get("/api/v1/me", headers=host_b, auth=tenant_a.admin).status_code == 401
        assert http.get("/api/v1/me", headers=host_a, auth=tenant_b.admin).status_code == 401
        assert http.get("/api/v1/me", headers=host_b, auth=tenant_b.admin).status_code == 200
        unknown = http.get("/api/v1/me", headers={"Host": f"c.{DOMAIN}"}, auth=tenant_a.admin)
        assert unknown.status_code == 404
        # the host names the tenant: a path prefix of another tenant does not change it
        crossed = http.get("/t/b/api/v1/me", headers=host_a, auth=tenant_b.admin)
        assert crossed.status_code in (401, 404), crossed.text


# -- files of systems stay in their tenant's folders ----------------------------------------------


def test_a_tenant_names_only_its_own_files(sqlite_settings: Settings) -> None:
    """Tenant a's CSV source cannot read the file b's CSV target writes, by a relative path
    (it means a's folder) nor by an absolute one; the default tenant cannot either."""
    with serve(sqlite_settings) as live:
        tenant_a = create_tenant(live.services, "a")
        tenant_b = create_tenant(live.services, "b")
        csv_files = {"csv.user.file": "exports/users.csv", "csv.group.file": "exports/groups.csv"}
        with tenant_b.client(live.url) as http:
            created(http.post("/scim/Users", json=user_body("bravo-secret-user")))
            lid: dict[str, Any] = {
                "name": "LID",
                "type": "local-identity-directory",
                "role": "source",
            }
            source = created(http.post("/api/v1/systems", json=lid))
            target = {
                "name": "CSV",
                "type": "csv",
                "role": "target",
                "sourceSystemIds": [source["id"]],
                "properties": csv_files,
            }
            created(http.post("/api/v1/systems", json=target))
            job = created(http.post(f"/api/v1/systems/{source['id']}/jobs"))
            assert run_queued(live.services, "b", job["id"]).status.value == "Success"
        written = live.settings.data_dir / "tenants" / "b" / "exports" / "users.csv"
        assert "bravo-secret-user" in written.read_text()

        reader: dict[str, Any] = {
            "name": "CSV",
            "type": "csv",
            "role": "source",
            "properties": csv_files,
        }
        with tenant_a.client(live.url) as http:
            source = created(http.post("/api/v1/systems", json=reader))  # a's own folder
            lid = {"name": "LID", "role": "target", "sourceSystemIds": [source["id"]]}
            created(http.post("/api/v1/systems", json={**lid, "type": "local-identity-directory"}))
            job = created(http.post(f"/api/v1/systems/{source['id']}/jobs"))
            assert run_queued(live.services, "a", job["id"]).status.value != "Success"
            assert http.get("/scim/Users").json()["totalResults"] == 0
            absolute = {**csv_files, "csv.user.file": str(written)}
            refused = http.post(
                "/api/v1/systems", json={**reader, "name": "Abs", "properties": absolute}
            )
            assert refused.status_code == 400, refused.text
            assert str(live.settings.data_dir) not in refused.text
        theirs = {**csv_files, "csv.user.file": "tenants/b/exports/users.csv"}
        with live.client(path="/api/v1") as default:
            refused = default.post("/systems", json={**reader, "properties": theirs})
            assert refused.status_code == 400 and "other tenants" in refused.text


def test_a_certificate_attached_in_two_tenants_is_revoked_in_one(sqlite_settings: Settings) -> None:
    """A caller's certificate is public: a may attach b's robot's certificate to its own
    robot, and deleting it there (a revocation) leaves b's robot able to use it at b."""
    settings = sqlite_settings.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
    with serve(settings) as live:
        tenants = [create_tenant(live.services, name) for name in ("a", "b")]
        cert, _ = self_signed("shared caller")
        header = _certificate_header(pem(cert))
        robots = {}
        for tenant in tenants:
            with tenant.client(live.url) as http:
                robot = {"name": "robot", "permissions": ["manage_users"]}
                robots[tenant.name] = created(http.post("/api/v1/clients", json=robot))
                attached = http.post(
                    f"/api/v1/clients/{robots[tenant.name]['clientId']}/certificates",
                    content=pem(cert).encode(),
                    headers={"Content-Type": "application/octet-stream"},
                )
                assert attached.status_code == 201, attached.text
        with httpx.Client(base_url=live.url, timeout=60) as http:
            for tenant in tenants:
                me = http.get(f"{tenant.prefix}/api/v1/me", headers=header).json()
                assert me["clientId"] == robots[tenant.name]["clientId"]
            with tenants[0].client(live.url) as a:
                fingerprint = created(
                    a.get(f"/api/v1/clients/{robots['a']['clientId']}/certificates")
                )["certificates"][0]["fingerprint"]
                url = f"/api/v1/clients/{robots['a']['clientId']}/certificates/{fingerprint}"
                assert a.delete(url).status_code == 204
            assert http.get("/t/a/api/v1/me", headers=header).status_code == 401
            me = http.get("/t/b/api/v1/me", headers=header)
            assert me.status_code == 200 and me.json()["clientId"] == robots["b"]["clientId"]
