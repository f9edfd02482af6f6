"""The whole ASGI application on one port: the APIs (:mod:`provisor.web`) and the console."""

from __future__ import annotations

from fastapi import FastAPI

from provisor import console
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.web import app as web


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The APIs' application (:func:`provisor.web.app.create_app`) with the console at
    ``/console``."""
    app = web.create_app(settings, services)
    console.install(app)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from PROVISOR_* variables."""
    return create_app(Settings())
