"""The admin API as a typed Python client: what the CLI and the tests manage a server with.

``Remote`` holds one :class:`~provisor.remote.session.Session` and one object per area of the
API (``remote.systems``, ``remote.jobs``...). It imports nothing of the server: it speaks HTTP.
"""

from __future__ import annotations

from provisor.remote.administrators import Administrators
from provisor.remote.certificates import Certificates
from provisor.remote.clients import Clients
from provisor.remote.configuration import Configuration
from provisor.remote.jobs import Jobs
from provisor.remote.notifications import Notifications
from provisor.remote.realtime import Realtime
from provisor.remote.schedules import Schedules
from provisor.remote.session import RemoteError, Session, path
from provisor.remote.sso import Sso
from provisor.remote.systems import Systems
from provisor.remote.tenants import Tenants

__all__ = ["Remote", "RemoteError", "Session", "path"]


class Remote:
    """A provisor server, managed through its admin API (the session's owner closes it)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.systems = Systems(session)
        self.jobs = Jobs(session)
        self.certificates = Certificates(session)
        self.clients = Clients(session)
        self.schedules = Schedules(session)
        self.notifications = Notifications(session)
        self.realtime = Realtime(session)
        self.configuration = Configuration(session)
        self.tenants = Tenants(session)
        self.administrators = Administrators(session)
        self.sso = Sso(session)
