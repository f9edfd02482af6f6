"""The peer's Django application."""

from django.apps import AppConfig


class ScimPeerConfig(AppConfig):
    name = "scimpeer"
