"""The job schedules of the admin API."""

from __future__ import annotations

from provisor.remote.session import Session


class Schedules:
    """``remote.schedules``."""

    def __init__(self, session: Session) -> None:
        self._session = session
