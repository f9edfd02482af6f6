"""The certificates of the admin API: the tenant CA, outbound and inbound certificates."""

from __future__ import annotations

from provisor.remote.session import Session


class Certificates:
    """``remote.certificates``."""

    def __init__(self, session: Session) -> None:
        self._session = session
