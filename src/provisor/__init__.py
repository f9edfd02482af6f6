"""provisor: an open-source identity provisioning service."""

__version__ = "0.1.0"
