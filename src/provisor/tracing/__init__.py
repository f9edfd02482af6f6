"""Traces: OpenTelemetry spans of requests, job pages and target writes, off unless configured.

The code marks its steps with :func:`span` (and the web's middleware with
:func:`request_span`); both are a shared no-op until :func:`configure` turns tracing on, and
OpenTelemetry (the optional extra ``provisor[tracing]``) is imported only then: tracing off
costs a function call and nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from provisor.errors import ConfigError

_NOOP: AbstractContextManager[Any] = contextlib.nullcontext()
_tracer: Any = None  # an OpenTelemetry Tracer while tracing is on
_provider: Any = None  # its TracerProvider (flushed on exit by OpenTelemetry itself)


def configure(endpoint: str | None, *, service: str = "provisor", exporter: Any = None) -> None:
    """Export this process's spans over OTLP/HTTP to ``endpoint`` (the URL the spans are
    posted to, ``.../v1/traces``), or to ``exporter`` (tests); neither: tracing off.

    ConfigError when tracing is asked for and OpenTelemetry is not installed."""
    global _tracer, _provider
    if endpoint is None and exporter is None:
        _tracer = _provider = None
        return
    try:
        from provisor.tracing import otel
    except ImportError as exc:
        raise ConfigError(
            "Tracing is configured (PROVISOR_OTEL_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT) but "
            f"OpenTelemetry is not installed ({exc.name} is missing): install the extra, "
            "pip install 'provisor[tracing]', or unset the variable."
        ) from None
    _provider, _tracer = otel.tracer(endpoint, service, exporter)


def flush(timeout_seconds: float = 10) -> bool:
    """Send the spans not yet sent; whether all went (True when tracing is off)."""
    if _provider is None:
        return True
    return bool(_provider.force_flush(int(timeout_seconds * 1000)))


def enabled() -> bool:
    return _tracer is not None


def span(name: str, **attributes: Any) -> AbstractContextManager[Any]:
    """A span around a step (a child of the current one); its attributes are named
    ``provisor.<key>`` (None values left out). A no-op when tracing is off."""
    if _tracer is None:
        return _NOOP
    found: AbstractContextManager[Any] = _tracer.start_as_current_span(
        name, attributes=_named(attributes)
    )
    return found


def request_span(
    name: str, headers: Mapping[str, str], attributes: Mapping[str, Any]
) -> AbstractContextManager[Any]:
    """The span of a request received, continuing the caller's trace (its W3C
    ``traceparent`` header) when it names one; yields the span (None when tracing is off)."""
    if _tracer is None:
        return _NOOP
    from provisor.tracing import otel

    return otel.server_span(_tracer, name, headers, attributes)


def _named(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {f"provisor.{k}": v for k, v in attributes.items() if v is not None}
