"""The systems and transformations of the admin API."""

from __future__ import annotations

from provisor.remote.session import Session


class Systems:
    """``remote.systems``."""

    def __init__(self, session: Session) -> None:
        self._session = session
