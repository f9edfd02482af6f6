"""The technical users (clients) of the admin API."""

from __future__ import annotations

from provisor.remote.session import Session


class Clients:
    """``remote.clients``."""

    def __init__(self, session: Session) -> None:
        self._session = session
