"""The real-time provisioning logs of the admin API."""

from __future__ import annotations

from provisor.remote.session import Session


class Realtime:
    """``remote.realtime``."""

    def __init__(self, session: Session) -> None:
        self._session = session
