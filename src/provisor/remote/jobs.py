"""The jobs of the admin API: start, follow, inspect, stop."""

from __future__ import annotations

from provisor.remote.session import Session


class Jobs:
    """``remote.jobs``."""

    def __init__(self, session: Session) -> None:
        self._session = session
