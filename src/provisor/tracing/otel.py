"""OpenTelemetry's SDK behind :mod:`provisor.tracing` (imported only when tracing is on)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from provisor import __version__

_PROPAGATOR = TraceContextTextMapPropagator()


def tracer(
    endpoint: str | None, service: str, exporter: SpanExporter | None
) -> tuple[TracerProvider, Tracer]:
    """A tracer of its own provider (not the process's global one: configure may be called
    again), whose spans go in batches to the OTLP/HTTP endpoint, or one by one to
    ``exporter``."""
    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(
        resource=Resource.create({"service.name": name, "service.version": __version__})
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider, provider.get_tracer("provisor", __version__)


def server_span(
    tracer: Tracer, name: str, headers: Mapping[str, str], attributes: Mapping[str, Any]
) -> AbstractContextManager[Any]:
    parent = _PROPAGATOR.extract(carrier=dict(headers))
    return tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.SERVER, attributes=dict(attributes)
    )
