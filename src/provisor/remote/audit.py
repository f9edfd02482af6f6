"""The audit log in the admin API (``/api/v1/audit``) and, for an operator, the
installation's or a tenant's (``/operator/v1/audit``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

from provisor.remote.session import Session


class AuditRecord(TypedDict):
    id: int
    seq: int
    at: str
    tenant: str
    actorKind: str
    actor: str
    address: str
    requestId: str
    action: str
    target: str
    detail: Any
    prevHash: str
    hash: str


class AuditPage(TypedDict):
    items: list[AuditRecord]
    next: int | None  # the cursor of the next (older) page: before=<next>


class Verdict(TypedDict):
    tenant: str
    ok: bool
    checked: int
    brokenId: int | None
    brokenSeq: int | None
    reason: str


class Audit:
    """``remote.audit``: read, export and verify the audit log. ``operator``: the operator
    API (the installation's log, or ``tenant``'s)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def _base(self, operator: bool, tenant: str | None) -> tuple[str, dict[str, Any]]:
        if operator or tenant is not None:
            return "/operator/v1/audit", {"tenant": tenant}
        return "/api/v1/audit", {}

    def list(
        self,
        *,
        before: int | None = None,
        limit: int | None = None,
        operator: bool = False,
        tenant: str | None = None,
        **filters: str | None,
    ) -> AuditPage:
        """A page of records, newest first (``filters``: since, until, actor, action,
        target)."""
        url, extra = self._base(operator, tenant)
        params = {**filters, **extra, "before": before, "limit": limit}
        found: AuditPage = self._session.json("GET", url, params=params)
        return found

    def export(
        self,
        *,
        format: str = "jsonl",
        limit: int | None = None,
        operator: bool = False,
        tenant: str | None = None,
        **filters: str | None,
    ) -> Iterator[bytes]:
        """The records oldest first as JSON lines or CSV, in chunks."""
        url, extra = self._base(operator, tenant)
        params = {**filters, **extra, "format": format, "limit": limit}
        response = self._session.call("GET", url + "/export", params=params)
        yield response.content

    def verify(self, *, operator: bool = False, tenant: str | None = None) -> Verdict:
        url, extra = self._base(operator, tenant)
        found: Verdict = self._session.json("GET", url + "/verify", params=extra)
        return found
