"""The administration console: server-rendered pages over the services, at ``/console``."""

from provisor.console.app import install

__all__ = ["install"]
