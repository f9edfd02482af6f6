"""Tracing is off unless configured (a no-op), says clearly when OpenTelemetry is missing,
and posts its spans over OTLP/HTTP to the configured receiver."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from provisor import tracing
from provisor.errors import ConfigError
from provisor.settings import Settings


@pytest.fixture(autouse=True)
def off() -> Iterator[None]:
    yield
    tracing.configure(None)


def test_off_is_a_shared_no_op() -> None:
    from provisor.tracing import otel  # imported before the next test: it must not matter

    assert callable(otel.tracer)
    tracing.configure(None)
    assert not tracing.enabled()
    with tracing.span("target write", target="CSV") as current:
        assert current is None
    assert tracing.span("a") is tracing.span("b")  # nothing made per call


def test_without_opentelemetry_configuring_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "provisor.tracing.otel", raising=False)
    monkeypatch.delattr(tracing, "otel", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'provisor\[tracing\]'"):
        tracing.configure("http://127.0.0.1:4318/v1/traces")
    assert not tracing.enabled()


def test_the_endpoint_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().otel_traces_url is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom")
    assert Settings().otel_traces_url == "http://c:4318/custom"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://b:4318/")
    assert Settings().otel_traces_url == "http://b:4318/v1/traces"
    assert Settings(otel_endpoint="http://a:4318").otel_traces_url == "http://a:4318/v1/traces"


class _Receiver(BaseHTTPRequestHandler):
    posts: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_spans_are_posted_to_an_otlp_http_receiver() -> None:
    posts: list[tuple[str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"posts": posts})
    with HTTPServer(("127.0.0.1", 0), handler) as receiver:
        thread = threading.Thread(target=receiver.serve_forever, daemon=True)
        thread.start()
        try:
            port = receiver.server_address[1]
            tracing.configure(f"http://127.0.0.1:{port}/v1/traces", service="provisor-test")
            with tracing.span("job page", job="j1", entities=2):
                with tracing.span("target write", target="CSV", skipped=None):
                    pass
            assert tracing.flush()
        finally:
            receiver.shutdown()
            thread.join()
    assert posts and {path for path, _ in posts} == {"/v1/traces"}
    request = ExportTraceServiceRequest()
    request.ParseFromString(b"".join(body for _, body in posts[:1]))
    [resource] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "provisor-test"
    found = {s.name: s for scope in resource.scope_spans for s in scope.spans}
    assert set(found) == {"job page", "target write"}
    assert found["target write"].parent_span_id == found["job page"].span_id
    attributes = {a.key: a.value for a in found["target write"].attributes}
    assert attributes["provisor.target"].string_value == "CSV"
    assert "provisor.skipped" not in attributes
