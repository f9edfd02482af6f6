"""Mounting the console on the application: its pages' routers and its static files."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from provisor.console import pages
from provisor.console.rendering import OPERATOR_ROOT, ROOT, PublicRoute, render

STATIC = Path(__file__).parent / "static"


def routers() -> list[APIRouter]:
    """The routers of every page module (``provisor.console.pages.*``), in module order and,
    within a module, in the order written (a fixed path before a parameter's)."""
    found: list[APIRouter] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(pages.__path__)):
        loaded = importlib.import_module(f"{pages.__name__}.{module}")
        found.extend(v for v in vars(loaded).values() if isinstance(v, APIRouter))
    return found


class Static(StaticFiles):
    """The console's assets, from the package (never from the internet), cached for a day."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"cache-control", b"public, max-age=86400"))
                message["headers"] = headers
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


unknown = APIRouter(route_class=PublicRoute, include_in_schema=False)


@unknown.api_route(ROOT + "/{rest:path}", methods=["GET", "POST"])
@unknown.api_route(OPERATOR_ROOT + "/{rest:path}", methods=["GET", "POST"])
def no_page(request: Request, rest: str) -> Response:
    """A console path that is no page: a page saying so (not the API's problem JSON)."""
    return render(request, "error.html", status=404, message="There is no such page.")


def install(app: FastAPI) -> None:
    """Add the console's routes and assets to ``app`` (the API's application)."""
    app.mount(ROOT + "/static", Static(directory=STATIC), name="console-static")
    app.mount(OPERATOR_ROOT + "/static", Static(directory=STATIC), name="operator-console-static")
    for router in routers():
        app.include_router(router)
    app.include_router(unknown)  # last: what no page matched
