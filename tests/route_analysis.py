"""FastAPI's analysis of provisor's routes, made once per test process instead of once per app.

FastAPI analyses a route (its endpoint's signature, dependencies, body and response models,
each a pydantic TypeAdapter) when an app first routes a request through it, and keeps the result
on that app: a server makes one app, but the suite makes one per test (its own database and
services), and analysing the ~300 routes again took about 0.3 s of CPU in each test that sends a
request. The analysis depends only on the routes' code, never on the app or its services, so
the suite shares it between the apps of one process. The requests, their validation and the
OpenAPI document are FastAPI's own, unchanged. If FastAPI renames these internals, nothing is
shared and the suite is only slower.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from typing import Any

import fastapi.routing

# The functions of fastapi.routing that analyse one route: pure functions of the route's code.
ANALYSES = (
    "_build_dependant_with_parameterless_dependencies",  # the endpoint's parameters
    "_get_body_field",  # the body model
    "create_model_field",  # the response models
)


def _key(value: Any) -> Hashable:
    """``value`` as a cache key: by value when hashable (a path, a name, a type), by identity
    otherwise; lists item by item."""
    if isinstance(value, list | tuple):
        return (type(value), tuple(_key(item) for item in value))
    try:
        hash(value)
    except TypeError:
        return (type(value), id(value))
    return (type(value), value)


def _shared(analyse: Callable[..., Any]) -> Callable[..., Any]:
    """``analyse``, computed once per distinct arguments (which are kept alive with the result:
    an identity in a key is never reused)."""
    done: dict[Hashable, tuple[Any, tuple[Any, ...], dict[str, Any]]] = {}
    lock = threading.Lock()

    @functools.wraps(analyse)
    def shared(*args: Any, **kwargs: Any) -> Any:
        key = (_key(args), _key(tuple(sorted(kwargs.items()))))
        with lock:
            found = done.get(key)
        if found is None:
            found = (analyse(*args, **kwargs), args, kwargs)
            with lock:
                found = done.setdefault(key, found)
        return found[0]

    shared.__wrapped_analysis__ = analyse  # type: ignore[attr-defined]
    return shared


def share() -> None:
    """Share FastAPI's route analysis between the apps of this process (once)."""
    for name in ANALYSES:
        analyse = getattr(fastapi.routing, name, None)
        if analyse is None or hasattr(analyse, "__wrapped_analysis__"):
            continue
        setattr(fastapi.routing, name, _shared(analyse))
