"""Settings of the django-scim2 peer: production-like (no debug, no sessions, no request logs).

The database is SQLite at ``PEER_DATABASE`` with the write-ahead log switched on for every
connection (``init_command``) and ``synchronous`` from ``PEER_SQLITE_SYNCHRONOUS`` (FULL
unless told: SQLite's own default, the durability provisor keeps). Connections persist
across requests (``CONN_MAX_AGE = None``) and write transactions take the write lock at
``BEGIN`` (``transaction_mode = "IMMEDIATE"``, Django's advice against "database is locked").
"""

import os

SECRET_KEY = os.environ.get("PEER_SECRET_KEY", "benchmark-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "scimpeer.urls"
WSGI_APPLICATION = "scimpeer.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_scim",
    "scimpeer",
]
AUTH_USER_MODEL = "scimpeer.User"
# Every request authenticates with a bearer token looked up in the database, as Django REST
# framework's TokenAuthentication does; django-scim2's own check then answers 401 without it.
MIDDLEWARE = ["scimpeer.auth.BearerTokenMiddleware"]

SYNCHRONOUS = os.environ.get("PEER_SQLITE_SYNCHRONOUS", "FULL").upper()
if SYNCHRONOUS not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
    raise ValueError(f"PEER_SQLITE_SYNCHRONOUS: {SYNCHRONOUS!r}")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PEER_DATABASE", "peer.sqlite3"),
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={SYNCHRONOUS};",
        },
    }
}

SCIM_SERVICE_PROVIDER = {
    "NETLOC": os.environ.get("PEER_NETLOC", "127.0.0.1"),
    "SCHEME": "http",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token looked up in the database on every request",
        }
    ],
    "USER_ADAPTER": "django_scim.adapters.SCIMUser",
    "GROUP_MODEL": "scimpeer.models.Group",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
