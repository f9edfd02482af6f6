"""Mounting the console on the application: its pages' routers and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from provisor.console.pages import home, login, sso
from provisor.console.rendering import ROOT

STATIC = Path(__file__).parent / "static"
ROUTERS = (login.router, login.signed_in, sso.router, sso.settings_router, home.router)


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


def install(app: FastAPI) -> None:
    """Add the console's routes and assets to ``app`` (the API's application)."""
    app.mount(ROOT + "/static", Static(directory=STATIC), name="console-static")
    for router in ROUTERS:
        app.include_router(router)
