"""Schemathesis hooks for scripts/fuzz_api.py: who may call what, and realistic data.

Loaded by ``schemathesis run`` through ``SCHEMATHESIS_HOOKS=fuzz_hooks``. The harness passes
``FUZZ_USERS`` (JSON: permission set -> [client id, secret], null for the anonymous caller),
``FUZZ_AS`` (the permission sets this run calls as, comma-separated: each test case draws one)
and the ids of the entities it created in ``FUZZ_SEEDS`` (JSON).

Two checks: ``no_server_error`` (no 5xx; ``501 Not Implemented`` is a deliberate answer, e.g.
from ``/scim/Me``, not a failure) and ``permission_enforced`` (no 2xx for a caller without the
route's permission, as the README documents them).
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

USERS_BY_SET: dict[str, list[str] | None] = json.loads(os.environ.get("FUZZ_USERS", "{}"))
CALLERS = [name for name in os.environ.get("FUZZ_AS", "").split(",") if name] or ["none"]
SEEDS: dict[str, Any] = json.loads(os.environ.get("FUZZ_SEEDS", "{}"))
# client id -> permission set; a permission set is named after its one permission ("none": none)
HOLDS = {user[0]: name for name, user in USERS_BY_SET.items() if user}

USERS, GROUPS = "manage_users", "manage_groups"
PUBLIC: frozenset[str] = frozenset()

# The first rule whose pattern matches the path template names the permissions that open it
# (any one of them; admin opens everything but the operator API). A path no rule covers fails
# the check: a new route needs its rule here.
RULES: list[tuple[str, frozenset[str]]] = [
    (r"^/(health|health/live|health/ready|openapi\.json|oauth2/token)$", PUBLIC),
    # the installation's metrics: installation technical users holding metrics, operators
    (r"^/metrics$", frozenset({"metrics", "operator"})),
    (r"^/scim/Users", frozenset({USERS})),
    (r"^/scim/Groups", frozenset({GROUPS})),
    (r"^/scim/Schemas", frozenset({USERS})),
    (r"^/scim/(ResourceTypes|ServiceProviderConfig|\.search|Bulk|Me)", frozenset({USERS, GROUPS})),
    # who the caller is: any technical user (every permission set but "none")
    (r"^/api/v1/me$", frozenset(name for name in USERS_BY_SET if name != "none")),
    (r"^/api/v1/", frozenset({"admin"})),
    (r"^/ips/(service/)?publicapi/v1/", frozenset({"tenant_admin_api"})),
    (r"^/ipsproxy/service/api/v1/scim/", frozenset({"proxy_api"})),
    (r"^/ipsproxy/service/api/v1/systems/", frozenset({"realtime_api"})),
    # the installation's operators only (admin does not open it; no permission set holds it)
    (r"^/operator/v1/", frozenset({"operator"})),
]


# ``view`` (read-only administration) opens the reads of the admin API and of the directory:
# their GETs, and these operations that read through a POST.
VIEW_POSTS = frozenset(
    {
        "/api/v1/configuration/plan",
        "/api/v1/systems/{system_id}/validate",
        "/scim/.search",
        "/scim/Users/.search",
        "/scim/Groups/.search",
    }
)


def viewable(path: str, method: str) -> bool:
    """Whether ``view`` opens this operation (``/api/v1/me`` has its own rule)."""
    if not re.search(r"^/(api/v1|scim)/", path):
        return False
    return method.upper() == "GET" or path in VIEW_POSTS


def allowed(path: str) -> frozenset[str] | None:
    """The permissions that open this path template (empty: public), or None if unknown."""
    for pattern, permissions in RULES:
        if re.search(pattern, path):
            return permissions
    return None


def caller(request: Any) -> str:
    """The permission set of the user who sent this request ("none" without credentials)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Basic":
        return "none"
    client_id = base64.b64decode(value).decode().partition(":")[0]
    return HOLDS.get(client_id, "none")


def permitted(path: str, permission: str, method: str) -> bool:
    """Whether a holder of this permission ("none": no permission) may use this operation."""
    needed = allowed(path)
    if needed is None:
        raise AssertionError(f"scripts/fuzz_hooks.py has no permission rule for {path}")
    admin_opens = permission == "admin" and "operator" not in needed
    view_opens = permission == "view" and viewable(path, method)
    return not needed or admin_opens or view_opens or permission in needed


READINESS = frozenset({"/health", "/health/ready"})


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx answer: the server either did the work or said what was wrong with the request."""
    status = response.status_code
    if status == 503 and case.path in READINESS:  # the answer "not ready", not a failure
        return None
    if status >= 500 and status != 501:  # 501: provisor says it does not do that (/scim/Me)
        raise AssertionError(f"{status} from {case.method} {case.path}: {response.text[:500]}")
    return None


@schemathesis.check
def permission_enforced(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 2xx for a caller that lacks the route's permission."""
    permission = caller(response.request)
    if 200 <= response.status_code < 300 and not permitted(case.path, permission, case.method):
        raise AssertionError(
            f"{response.status_code} for {case.method} {case.path} to a caller with "
            f"permission set {permission!r}"
        )
    return None


# -- data: the seeded entities' ids replace generated path parameters half of the time -----------


def _seeds_for(path: str) -> dict[str, list[str]]:
    """Candidate values of each path parameter of this path template."""
    systems = SEEDS.get("systems", [])
    if "/ipsproxy/service/api/v1/scim/" in path:
        systems = SEEDS.get("proxies", [])
    elif "/ipsproxy/service/api/v1/systems/" in path:
        systems = SEEDS.get("sources", [])
    resources = SEEDS.get("groups", []) if "/Groups" in path else SEEDS.get("users", [])
    if "{endpoint}" in path:
        resources = SEEDS.get("users", []) + SEEDS.get("groups", [])
    return {
        "system_id": systems,
        "resource_id": resources,
        "entity_id": SEEDS.get("users", []),
        "endpoint": ["Users", "Groups"],
        "entity_type": ["user", "group"],
        "type_id": SEEDS.get("connector_types", []),
        "kind": ["read", "write", "proxy-read", "proxy-write"],
        "job_type": ["READ", "RESET"],
        "client_id": SEEDS.get("clients", []),
        "job_id": SEEDS.get("jobs", []),
    }


@schemathesis.hook
def flatmap_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    if not path_parameters or ctx.operation is None:
        return st.just(path_parameters)
    candidates = _seeds_for(ctx.operation.path)
    seeded = st.fixed_dictionaries(
        {
            key: st.sampled_from(candidates[key]) if candidates.get(key) else st.just(value)
            for key, value in path_parameters.items()
        }
    )
    return st.one_of(st.just(path_parameters), seeded)


# -- bodies for the SCIM, proxy and real-time operations, which read raw bodies ------------------

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
# Mostly sensible strings, sometimes control characters, NUL, long or empty ones.
TEXT = st.one_of(
    st.from_regex(r"[a-z][a-z0-9._-]{0,15}", fullmatch=True),
    st.text(max_size=40),
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=5),
    st.integers(min_value=1, max_value=20_000).map(lambda n: "x" * n),
)
ATTRIBUTES = st.sampled_from(
    [
        "userName",
        "displayName",
        "name.givenName",
        "emails",
        'emails[type eq "work"].value',
        "members",
        'members[value eq "x"]',
        "active",
        "externalId",
        "id",
        "meta",
        "schemas",
        f"{ENTERPRISE}:department",
    ]
)
ID = st.sampled_from(SEEDS.get("users", []) + SEEDS.get("groups", []) or ["x"]) | TEXT
USER_BODY = st.fixed_dictionaries(
    {"schemas": st.just([USER]) | st.just([USER, ENTERPRISE]), "userName": TEXT},
    optional={
        "displayName": TEXT,
        "externalId": TEXT,
        "active": st.booleans() | JSON,
        "name": st.fixed_dictionaries({}, optional={"givenName": TEXT, "familyName": JSON}),
        "emails": st.lists(
            st.fixed_dictionaries({"value": TEXT}, optional={"type": TEXT, "primary": JSON}),
            max_size=3,
        ),
        ENTERPRISE: st.fixed_dictionaries({}, optional={"department": TEXT, "manager": JSON}),
        "groups": JSON,
        "id": TEXT,
        "meta": JSON,
    },
)
GROUP_BODY = st.fixed_dictionaries(
    {"schemas": st.just([GROUP]), "displayName": TEXT},
    optional={
        "members": st.lists(st.fixed_dictionaries({"value": ID}, optional={"type": TEXT})),
        "externalId": TEXT,
    },
)
PATCH_BODY = st.fixed_dictionaries(
    {
        "schemas": st.just([PATCH_OP]),
        "Operations": st.lists(
            st.fixed_dictionaries(
                {"op": st.sampled_from(["add", "replace", "remove", "Add", "bogus"])},
                optional={"path": ATTRIBUTES | TEXT, "value": JSON | TEXT | ID},
            ),
            max_size=4,
        ),
    }
)
SEARCH_BODY = st.fixed_dictionaries(
    {"schemas": st.just([SEARCH])},
    optional={
        "filter": TEXT,  # replaced by a real filter below when drawn
        "startIndex": SCALARS,
        "count": SCALARS,
        "attributes": st.lists(ATTRIBUTES | TEXT, max_size=3),
        "excludedAttributes": st.lists(ATTRIBUTES, max_size=3),
        "sortBy": ATTRIBUTES | TEXT,
        "sortOrder": st.sampled_from(["ascending", "descending"]) | TEXT,
    },
)
BULK_BODY = st.fixed_dictionaries(
    {
        "schemas": st.just([BULK]),
        "Operations": st.lists(
            st.fixed_dictionaries(
                {
                    "method": st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"]),
                    "path": st.sampled_from(["/Users", "/Groups"]) | ID.map("/Users/{}".format),
                },
                optional={"bulkId": TEXT, "data": USER_BODY | GROUP_BODY | PATCH_BODY | JSON},
            ),
            max_size=4,
        ),
    },
    optional={"failOnErrors": SCALARS},
)


def body_for(path: str, method: str) -> Any:
    """Bodies for an operation the OpenAPI document gives no body schema: mostly the SCIM
    message it expects, sometimes another one, sometimes any JSON at all."""
    expected: Any
    if path.endswith(".search"):
        expected = SEARCH_BODY
    elif path.endswith("/Bulk"):
        expected = BULK_BODY
    elif method == "PATCH":
        expected = PATCH_BODY
    elif "Group" in path or "group" in path:
        expected = GROUP_BODY
    else:
        expected = USER_BODY
    others = USER_BODY | GROUP_BODY | PATCH_BODY | JSON
    return st.one_of(expected, expected, expected, others)


# SCIM filters (RFC 7644 §3.4.2.2) made of real attributes and operators, nested and chained.
COMPARISON = st.builds(
    "{} {} {}".format,
    st.sampled_from(["userName", "displayName", "emails.value", "meta.lastModified", "id", "x"]),
    st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]),
    st.one_of(st.text(max_size=10).map(json.dumps), st.integers().map(str), st.just("true")),
)
FILTER = st.recursive(
    COMPARISON | st.sampled_from(["userName pr", "members pr"]),
    lambda inner: st.one_of(
        st.builds("{} {} {}".format, inner, st.sampled_from(["and", "or"]), inner),
        inner.map("not ({})".format),
        inner.map("emails[{}]".format),
        inner.map("({})".format),
    ),
    max_leaves=30,
)


# Paging values past every integer type a database has.
BIG = st.sampled_from([0, -1, 2**31, 2**63, 10**20]).map(str) | st.integers().map(str)


@schemathesis.hook
def flatmap_query(ctx: Any, query: dict[str, Any] | None) -> Any:
    declared = {p.name for p in ctx.operation.query} if ctx.operation is not None else set()
    query = query or {}
    options = [st.just(query)]
    if "filter" in declared:
        options.append(FILTER.map(lambda f: {**query, "filter": f}))
    paging = [key for key in ("startIndex", "count", "offset", "limit") if key in declared]
    if paging:
        options.append(st.fixed_dictionaries({key: BIG for key in paging}).map(query.__or__))
    return st.one_of(options)


def _as(case: Any, name: str) -> Any:
    user = USERS_BY_SET.get(name)
    if user is None:
        case.headers.pop("Authorization", None)
    else:
        token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        case.headers["Authorization"] = f"Basic {token}"
    return case


def _with_filter(body: Any) -> Any:
    if isinstance(body, dict) and "filter" in body:
        return st.one_of(st.just(body), FILTER.map(lambda f: {**body, "filter": f}))
    return st.just(body)


def _with_body(case: Any) -> Any:
    def attach(body: Any) -> Any:
        case.body = body
        case.media_type = "application/json"
        return case

    return body_for(case.path, case.method.upper()).flatmap(_with_filter).map(attach)


@schemathesis.hook
def before_generate_case(ctx: Any, strategy: Any) -> Any:
    operation = ctx.operation
    if operation is not None and operation.method.upper() in {"POST", "PUT", "PATCH"}:
        if not operation.body:  # the operation reads a raw body the schema does not describe
            strategy = strategy.flatmap(_with_body)
    callers = st.sampled_from(CALLERS)
    return strategy.flatmap(lambda case: callers.map(lambda name: _as(case, name)))
