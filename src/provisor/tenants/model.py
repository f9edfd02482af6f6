"""A tenant and its quotas."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provisor.errors import InputError


class Kind(StrEnum):
    """A standalone tenant is unrestricted; a bundle tenant came with the preconfigured
    systems of a bundle template."""

    STANDALONE = "standalone"
    BUNDLE = "bundle"


# The quotas' JSON names (tenants.quotas, the operator API) and their attributes.
QUOTA_NAMES = {
    "sourceSystems": "source_systems",
    "targetSystems": "target_systems",
    "proxySystems": "proxy_systems",
    "directoryEntities": "directory_entities",
    "jobConcurrency": "job_concurrency",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Quotas:
    """What one tenant may hold or run at once, so that it cannot starve the others; None:
    the installation's default (``PROVISOR_MAX_*_SYSTEMS``, unlimited directory,
    ``PROVISOR_TENANT_JOB_CONCURRENCY``)."""

    source_systems: int | None = None
    target_systems: int | None = None
    proxy_systems: int | None = None
    directory_entities: int | None = None  # users and groups of the Local Identity Directory
    job_concurrency: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Quotas:
        """Quotas from their JSON object; InputError names what is wrong."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InputError('"quotas" is an object such as {"sourceSystems": 20}.')
        unknown = sorted(set(data) - set(QUOTA_NAMES))
        if unknown:
            raise InputError(
                f"Unknown quota(s) {', '.join(unknown)}; known: {', '.join(QUOTA_NAMES)}."
            )
        values: dict[str, int | None] = {}
        for name, attribute in QUOTA_NAMES.items():
            value = data.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InputError(f'Quota "{name}" is a whole number of 0 or more, or null.')
            minimum = 1 if attribute == "job_concurrency" else 0
            if value is not None and value < minimum:
                raise InputError(f'Quota "{name}" is at least {minimum}.')
            values[attribute] = value
        return cls(**values)

    def merged(self, changes: Any) -> Quotas:
        """These quotas with ``changes`` (a JSON object of some quotas: a number sets one,
        null makes it the default again) applied; InputError names what is wrong."""
        if not isinstance(changes, dict):
            raise InputError('"quotas" is an object such as {"sourceSystems": 20}.')
        return Quotas.from_json({**self.to_json(), **changes})

    def to_json(self) -> dict[str, int]:
        """The quotas set (the others are the installation's defaults)."""
        out = {}
        for name, attribute in QUOTA_NAMES.items():
            value = getattr(self, attribute)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    name: str
    title: str
    kind: Kind
    bundle: str | None
    enabled: bool
    quotas: Quotas = field(default_factory=Quotas)
    created: str
    last_modified: str
