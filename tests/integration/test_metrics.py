"""Issue 19: ``GET /metrics`` (the installation's, permission ``metrics``): requests by route
group, jobs, entities per target, real-time latency, inbound refusals, failed logins, and what
the database says at scrape time (queued jobs, runners' heartbeats, certificates' days left);
the dashboard's and the alert rules' expressions name only metrics provisor exports."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]  # stubs: types-PyYAML, if installed
from prometheus_client.parser import text_string_to_metric_families

from provisor.context import INSTALLATION, Context
from provisor.errors import AuthenticationError, InputError, TooManyRequestsError
from provisor.metrics import instruments
from provisor.metrics.processes import listen
from provisor.ratelimit import InboundBudget
from provisor.settings import Settings
from provisor.timestamps import now
from provisor.types import EntityType
from provisor.web.app import create_app
from provisor.web.metrics import route_group
from provisor.web.ratelimit import spend
from tests.conftest import LiveServer, free_port, uvicorn_thread
from tests.jobs.conftest import add_users, lid_source, run_job
from tests.jobs.test_pipeline import csv_target

ROOT = Path(__file__).resolve().parents[2]
CTX = Context.system("tests")
OPERATOR = Context.administrator("operator", tenant=INSTALLATION)
PUSH = "/ipsproxy/service/api/v1/systems"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scraper(live: LiveServer, *permissions: str) -> tuple[str, str]:
    """A technical user of the installation scope."""
    wanted = list(permissions or ["metrics"])
    _, creds = live.services.clients.create(OPERATOR, f"scraper-{'-'.join(wanted)}", wanted)
    return creds.client_id, creds.client_secret


def scrape(live: LiveServer, auth: tuple[str, str]) -> tuple[str, Samples]:
    with live.client(auth=auth) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return answer.text, parse(answer.text)


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_route_groups_are_few_names() -> None:
    assert route_group("/scim/Users/abc") == "scim"
    assert route_group("/t/acme/scim/Users") == "scim"
    assert route_group("/ipsproxy/service/api/v1/scim/s1/Users") == "ipsproxy"
    assert route_group("/t/acme/ipsproxy/service/api/v1/systems/s1/entities/user") == "realtime"
    assert route_group("/api/v1/systems") == "api"
    assert route_group("/operator/v1/tenants") == "operator"
    assert route_group("/operator/console/tenants") == "console"
    assert route_group("/console/") == "console"
    assert route_group("/oauth2/token") == "oauth"
    assert route_group("/health") == "health"
    assert route_group("/t/acme") == "other"
    assert route_group("/no/such/thing") == "other"


def test_only_the_installations_metrics_readers_and_operators_read_them(
    sqlite_server: LiveServer,
) -> None:
    live = sqlite_server
    reader = scraper(live)
    with live.client(auth=None) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    with live.client() as tenant_admin:  # a tenant's credentials are unknown there
        assert tenant_admin.get("/metrics").status_code == 401
        assert tenant_admin.get("/t/default/metrics").status_code == 403  # admin: not metrics
    with live.client(auth=reader) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/t/default/metrics").status_code == 401  # a tenant's address
        assert client.get("/operator/v1/tenants").status_code == 403  # no operator
    operator = scraper(live, "operator")
    scrape(live, operator)
    with pytest.raises(InputError, match="installation"):
        live.services.clients.create(CTX, "tenant-reader", ["metrics"])
    with pytest.raises(InputError, match="operators and metrics readers"):
        live.services.clients.create(OPERATOR, "both", ["metrics", "view"])


def test_requests_jobs_real_time_and_failed_logins_are_counted(
    sqlite_server: LiveServer, tmp_path: Path
) -> None:
    live, services = sqlite_server, sqlite_server.services
    reader = scraper(live)
    _, before = scrape(live, reader)
    source = lid_source(services)
    target = csv_target(services, source.id, tmp_path)
    ids = add_users(services, "ada", "grace")
    with live.client(path="/scim") as scim:
        assert scim.get("/Users").status_code == 200
    with live.client(auth=("nobody", "wrong"), path="/scim") as wrong:
        assert wrong.get("/Users").status_code == 401
    job = run_job(services, source.id)
    assert job.status.value == "Success"
    found = services.directory.get(CTX, EntityType.USER, ids["ada"], "/scim")
    entity = json.loads(found.body or b"")
    with live.client(auth=live.new_client("realtime_api"), path=PUSH) as api:
        pushed = api.put(f"/{source.id}/entities/user/{entity['id']}", json=entity)
        assert pushed.status_code in (200, 201), pushed.text
    with pytest.raises(AuthenticationError):
        services.administrators.authenticate("default", "nobody", "not the password")
    _, after = scrape(live, reader)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("provisor_http_requests_total", group="scim", method="GET", status="200") == 1
    assert delta("provisor_http_requests_total", group="scim", method="GET", status="401") == 1
    assert delta("provisor_http_request_duration_seconds_count", group="scim") == 2
    assert delta("provisor_failed_logins_total", kind="client", reason="secret") == 1
    assert delta("provisor_failed_logins_total", kind="administrator", reason="password") == 1
    assert delta("provisor_jobs_finished_total", state="success") == 1
    assert delta("provisor_job_duration_seconds_count", state="success") == 1
    assert delta("provisor_job_entities_total", type="user", role="source", action="read") == 2
    created = delta(
        "provisor_target_entities_total", tenant="default", system=target.id, action="created"
    )
    assert created == 2
    assert (
        delta("provisor_realtime_target_duration_seconds_count", tenant="default", system=target.id)
        == 1
    )
    assert value(after, "provisor_jobs_running") == 0


def test_the_database_is_read_at_scrape_time(server: LiveServer, tmp_path: Path) -> None:
    """On SQLite and on PostgreSQL (its row-level security: every tenant's rows)."""
    live, services = server, server.services
    reader = scraper(live)
    source = lid_source(services)
    target = csv_target(services, source.id, tmp_path)
    services.certificates.generate_outbound(CTX, target.id, validity_days=10)
    services.jobs.start(CTX, source.id)  # queued: no job runner here
    services.jobs.beat(Context.system("worker", tenant="*"), "runner-a", now())
    _, samples = scrape(live, reader)
    assert value(samples, "provisor_jobs_queued") == 1
    assert 0 <= value(samples, "provisor_job_runner_heartbeat_age_seconds", runner="runner-a") < 600
    days = value(samples, "provisor_certificate_days_left", tenant="default", system=target.id)
    assert days == 10


def test_a_refused_inbound_call_is_counted(sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(
        update={"inbound_throttle_per_minute": 0, "inbound_max_per_minute": 1}
    )
    budget = InboundBudget(settings)
    refused = instruments.instruments().inbound.labels("refused")
    before = refused._value.get()
    try:
        asyncio.run(spend(budget))
        with pytest.raises(TooManyRequestsError):
            asyncio.run(spend(budget))
    finally:
        budget.close()
    assert refused._value.get() - before == 1


def test_metrics_off_record_nothing_and_answer_404(sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(update={"metrics": False})
    requests = instruments.instruments().requests
    try:
        app = create_app(settings)
        with uvicorn_thread(app, log_level="warning") as port:
            before = sum(m.samples[0].value for m in [*requests.collect()] if m.samples)
            answer = httpx.get(f"http://127.0.0.1:{port}/health")
            assert answer.status_code == 200
            after = sum(m.samples[0].value for m in [*requests.collect()] if m.samples)
            assert after == before
    finally:
        instruments.configure(enabled=True)


def test_a_workers_listener_serves_its_metrics_without_credentials() -> None:
    port = free_port()
    stop = listen("127.0.0.1", port)
    try:
        instruments.failed_login("client", "token")
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert answer.status_code == 200
        samples = parse(answer.text)
        assert value(samples, "provisor_failed_logins_total", kind="client", reason="token") >= 1
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")


# -- the dashboard and the alert rules ----------------------------------------------------------


def exported_names(text: str) -> set[str]:
    """The series names a scrape can hold: each family's samples by its type."""
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    for line in text.splitlines():
        match = re.match(r"# TYPE (\S+) (\S+)", line)
        if match:
            family, kind = match.groups()
            family = family.removesuffix("_total")  # a counter's TYPE line may name either
            names.update(family + suffix for suffix in suffixes.get(kind, ("",)))
    return names


def expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/provisor.json").read_text())
    found = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    found += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return found


def test_the_dashboard_and_alerts_name_only_exported_metrics(sqlite_server: LiveServer) -> None:
    text, _ = scrape(sqlite_server, scraper(sqlite_server))
    exported = exported_names(text)
    found = expressions()
    assert len(found) >= 10
    named = {name for expr in found for name in re.findall(r"\bprovisor_[a-z_]+", expr)}
    assert named, "the expressions name provisor's metrics"
    assert named <= exported, f"not exported: {sorted(named - exported)}"
