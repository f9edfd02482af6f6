"""The one small interface every connector implements, and the errors connectors raise.

A connector talks to one back-end (a SCIM service, an LDAP server, a CSV file, this tenant's
directory) in the back-end's own shape: it reads and writes the JSON that transformations
take as input (read side) and produce (write side). It knows nothing of jobs, operational
data or storage; the job engine drives it.

Entities are plain JSON objects. For LDAP they are ``{"attribute": [values...], ...}`` plus
``"dn"``; for SCIM and the directory, SCIM resources; for CSV, one object per row.
"""

from __future__ import annotations

import abc
import re
import unicodedata
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, NoReturn, Self
from urllib.parse import quote

from provisor.connectors.properties import Properties
from provisor.errors import ProvisorError
from provisor.types import EntityType

Entity = dict[str, Any]


class Role(StrEnum):
    SOURCE = "source"
    TARGET = "target"
    PROXY = "proxy"


# -- errors ---------------------------------------------------------------------------------------


class ConnectorError(ProvisorError):
    """The back-end could not do what was asked."""

    retryable = False  # whether trying the same call again later may succeed


class ConnectionFailed(ConnectorError):
    """The back-end cannot be reached (refused, timeout, DNS, TLS)."""

    retryable = True


class AuthenticationFailed(ConnectorError):
    """The back-end rejected the credentials (HTTP 401/403, LDAP invalid credentials)."""


class EntityNotFound(ConnectorError):
    """The entity does not exist in the back-end."""


class EntityConflict(ConnectorError):
    """The back-end already has an entity with this unique value (HTTP 409, LDAP exists)."""


class RateLimited(ConnectorError):
    """The back-end asks to slow down (HTTP 429 or 503); ``retry_after`` in seconds."""

    retryable = True

    def __init__(self, message: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendError(ConnectorError):
    """The back-end failed (HTTP 5xx) or answered something that cannot be understood."""

    def __init__(self, message: str | None = None, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class InvalidEntity(ConnectorError):
    """The back-end refused the entity as invalid (HTTP 400, LDAP schema violation)."""


class Unsupported(ConnectorError):
    """The back-end cannot do what was asked (a filter it has no way to evaluate, ...)."""


class InvalidId(InvalidEntity):
    """An entity id that cannot name one entity (empty, ``.``, ``..``, a ``/``, a control
    character, or a DN outside the system's base): refused before the back-end is asked."""


# -- ids and back-end text --------------------------------------------------------------------

EXCERPT_LENGTH = 200  # characters of a back-end's answer a message may repeat
MAX_ID_LENGTH = 512  # characters of an entity id the operational data keeps
_SPACES = re.compile(r"\s+")


def path_segment(entity_id: str) -> str:
    """An id as one URL path segment, percent-encoded; InvalidId for ids that are no segment
    (``""``, ``.``, ``..``, anything with ``/`` or a control character such as NUL)."""
    if entity_id in ("", ".", "..") or "/" in entity_id or has_control(entity_id):
        raise InvalidId(
            f"{excerpt(repr(entity_id), 80)} is not an entity id: one path segment, not empty, "
            "'.' or '..', without '/' or control characters"
        )
    return quote(entity_id, safe="")


def storable_id(entity_id: str) -> bool:
    """Whether every database keeps ``entity_id`` as an id (operational data, logs)."""
    return len(entity_id) <= MAX_ID_LENGTH and not has_control(entity_id)


def has_control(text: str) -> bool:
    """Whether a text holds a control character (NUL, line breaks, DEL, ...)."""
    return any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in text)


def _unprintable(char: str) -> bool:
    """Control, format (bidi overrides) and line/paragraph separator characters."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """A short, printable excerpt of what a back-end said: control characters dropped,
    white space collapsed, at most ``limit`` characters (``…`` marks a cut)."""
    printable = "".join(" " if _unprintable(c) else c for c in text)
    flat = _SPACES.sub(" ", printable).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch_operations_of(entity: Entity) -> list[Any] | None:
    """The operations of an entity that is itself a SCIM PATCH request (what ``deleteEntity``
    and ``patchEntity`` mappings build), else None: SCIM connectors send it as it is."""
    schemas = entity.get("schemas")
    operations = entity.get("Operations")
    if isinstance(schemas, list) and PATCH_OP in schemas and isinstance(operations, list):
        return operations
    return None


# -- values ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a read. ``delta_token``, when the back-end tracks changes, is where the
    next delta read starts; the last page of a read carries it."""

    entities: list[Entity]
    delta_token: str | None = None


@dataclass(frozen=True, slots=True)
class Written:
    """The result of a create or update: the entity's id in the back-end, and the entity
    as the back-end returned it when it did."""

    id: str
    entity: Entity | None = None

    def __post_init__(self) -> None:
        if not storable_id(self.id):  # a hostile back-end's id must not break the job's commit
            raise BackendError(
                f"The back-end answered the id {excerpt(repr(self.id), 80)}, which is no id: "
                f"at most {MAX_ID_LENGTH} characters, no control characters."
            )


@dataclass(frozen=True, slots=True)
class Slice:
    """Entities ``start_index`` to ``start_index + count - 1`` (1-based) of a listing, as a
    proxy pages them. ``total`` is how many the listing holds when the back-end says so;
    ``last`` whether no entity follows this slice."""

    entities: list[Entity]
    total: int | None = None
    last: bool = True


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a back-end said of what it accepts, learned before writing (a SCIM service's
    ``/Schemas`` and ``/ResourceTypes``): ``fingerprint`` changes when that changes, ``note``
    says what could not be learned (a warning for the job)."""

    fingerprint: str = ""
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Fitted:
    """An entity as the back-end accepts it, and the paths left out (what it does not
    declare: an extension's URN, ``attribute`` or ``attribute.sub``)."""

    entity: Entity
    left_out: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Capabilities:
    entity_types: frozenset[EntityType] = frozenset(EntityType)
    delta_read: bool = False  # read(delta=...) returns only what changed
    patch: bool = False  # updates send only what changed
    bulk: bool = False
    bulk_size: int = 0  # entities a create_many request takes at most (0: any number)
    membership: bool = True  # change_members is supported
    scim_patch: bool = False  # update takes a SCIM PatchOp entity and sends it as it is


@dataclass(frozen=True)
class ConnectorConfig:
    """What a connector is built from: the system's properties, with defaults applied and
    credentials decrypted, and what the hosting process lends it."""

    system_id: str
    system_name: str
    role: Role
    properties: Mapping[str, str] = field(repr=False)  # credentials in clear: never shown
    services: Mapping[str, Any] = field(default_factory=dict, repr=False)  # e.g. "directory"

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.properties.get(key)
        return default if value is None or value == "" else value

    def flag(self, key: str, default: bool = False) -> bool:
        return Properties(self.properties).flag(key, default)

    def integer(self, key: str, default: int) -> int:
        found = Properties(self.properties).number(key, default)
        return default if found is None else found


# -- the interface --------------------------------------------------------------------------------


class Connector(abc.ABC):
    """A back-end, seen through the operations provisioning needs.

    Every method is a coroutine; blocking clients (python-ldap, files) run in threads. Errors
    are ``ConnectorError`` subclasses with a message fit for a job log (no secrets).
    """

    capabilities: Capabilities = Capabilities()
    # Whether one connector may serve many calls at once, for as long as its system's version
    # lasts (the proxy keeps it, with its connections): it holds no call's context and
    # nothing read once from the back-end that could become stale.
    shared: ClassVar[bool] = False

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config

    @abc.abstractmethod
    def read(self, entity_type: str, *, delta: str | None = None) -> AsyncIterator[Page]:
        """Every entity of a type, page by page; from ``delta`` on when given and supported."""

    async def split(self, entity_type: str, size: int) -> list[dict[str, Any]] | None:
        """Bounds of partitions of about ``size`` entities that together read what a full
        :meth:`read` reads, each read on its own with :meth:`read_part` (decision 0032);
        None: the back-end is read in one go."""
        return None

    def read_part(self, entity_type: str, bounds: Mapping[str, Any]) -> AsyncIterator[Page]:
        """The entities of one partition (bounds :meth:`split` gave), page by page, the same
        pages in the same order every time; the last page carries the delta token."""
        raise NotImplementedError(f"{type(self).__name__} reads in one go")

    @abc.abstractmethod
    async def get(self, entity_type: str, entity_id: str) -> Entity | None:
        """One entity by its id in the back-end, or None."""

    @abc.abstractmethod
    async def find(self, entity_type: str, attribute: str, value: str) -> list[Entity]:
        """The entities whose ``attribute`` equals ``value`` (a unique attribute: 0 or 1)."""

    @abc.abstractmethod
    async def create(
        self, entity_type: str, entity: Entity, *, entity_id: str | None = None
    ) -> Written:
        """Create an entity; ``entity_id`` when the write transformation chose it (LDAP)."""

    @abc.abstractmethod
    async def update(
        self, entity_type: str, entity_id: str, entity: Entity, *, previous: Entity | None = None
    ) -> Written:
        """Update an entity: a full replace, or only what changed from ``previous`` when the
        back-end supports it and the system asks for it (PATCH)."""

    @abc.abstractmethod
    async def delete(self, entity_type: str, entity_id: str) -> None:
        """Delete an entity; EntityNotFound when it is already gone."""

    async def change_members(
        self, group_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        """Add and remove members of a group (members as the back-end names them)."""
        raise ConnectorError(f"{type(self).__name__} cannot change group members")

    async def slice(
        self,
        entity_type: str,
        *,
        start_index: int = 1,
        count: int = 100,
        modified_after: str | None = None,
    ) -> Slice:
        """One page of a listing for a proxy: the entities from ``start_index`` (1-based), at
        most ``count``; with ``modified_after`` (an ISO 8601 timestamp) only those modified
        after it. The system's read filter applies as in ``read``.

        This default scans ``read`` and skips what comes before the page (it reads one entity
        more to know whether the page is the last); back-ends that page by index override it.
        ``modified_after`` goes through :meth:`delta_token_after`.
        """
        delta = self.delta_token_after(modified_after) if modified_after else None
        skip, wanted = max(0, start_index - 1), max(0, count)
        taken: list[Entity] = []
        seen = 0
        pages = self.read(entity_type, delta=delta)
        try:
            async for page in pages:
                for entity in page.entities:
                    seen += 1
                    if seen <= skip:
                        continue
                    if len(taken) == wanted:
                        return Slice(taken, None, last=False)
                    taken.append(entity)
        finally:
            await pages.aclose()  # type: ignore[attr-defined]
        return Slice(taken, seen, last=True)  # read to the end: the total is known

    def delta_token_after(self, timestamp: str) -> str:
        """The delta token of ``read`` that starts after an ISO 8601 timestamp; Unsupported
        when the back-end's changes cannot be read from a time."""
        raise Unsupported(f"{type(self).__name__} cannot list what changed after a time")

    async def create_many(
        self, entity_type: str, entities: Sequence[Entity]
    ) -> list[Written | ConnectorError]:
        """Create several entities (in one request where the back-end can): one result per
        entity, in order: what was written or why not. Retryable errors are raised."""
        results: list[Written | ConnectorError] = []
        for entity in entities:
            try:
                results.append(await self.create(entity_type, entity))
            except ConnectorError as exc:
                if exc.retryable:
                    raise
                results.append(exc)
        return results

    def unique_attributes(self, entity_type: str) -> tuple[str, ...]:
        """The attributes that find an existing entity when a create conflicts (spec §2.4),
        as ``find`` takes them; empty when the back-end has none."""
        return ()

    async def discover(self) -> Discovery:
        """Learn what the back-end accepts (once; later calls answer from memory). Back-ends
        that describe nothing accept what the write transformation makes."""
        return Discovery()

    def fit(self, entity_type: str, entity: Entity) -> Fitted:
        """The entity as the back-end accepts it, after :meth:`discover`: what the back-end
        does not declare is left out. Unchanged until something was learned."""
        return Fitted(entity)

    def entity_id(self, entity_type: str, entity: Entity) -> str | None:
        """The id of an entity the back-end returned (what ``get`` and ``update`` take)."""
        value = entity.get("id")
        return value if isinstance(value, str) else None

    @abc.abstractmethod
    async def test_connection(self) -> str:
        """Check that the back-end answers with these settings: a short description of what
        was checked, or a ConnectorError saying what is wrong."""

    async def flush(self) -> None:
        """Make every write accepted so far durable in the back-end (connectors that batch
        writes, such as CSV, hold some until then). The job engine calls it before it records
        entities as written."""
        return None

    async def aclose(self) -> None:
        """Flush and release connections."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Unusable(Connector):
    """A target whose connector cannot be built (no client certificate, a property missing):
    each operation fails with the reason, so the job's other targets go on."""

    def __init__(self, config: ConnectorConfig, reason: str) -> None:
        super().__init__(config)
        self.reason = reason

    def _fail(self) -> NoReturn:
        raise ConnectorError(self.reason)

    async def read(self, entity_type: str, *, delta: str | None = None) -> AsyncIterator[Page]:
        self._fail()
        yield  # pragma: no cover - makes this an async generator

    async def get(self, entity_type: str, entity_id: str) -> Entity | None:
        self._fail()

    async def find(self, entity_type: str, attribute: str, value: str) -> list[Entity]:
        self._fail()

    async def create(
        self, entity_type: str, entity: Entity, *, entity_id: str | None = None
    ) -> Written:
        self._fail()

    async def update(
        self,
        entity_type: str,
        entity_id: str,
        entity: Entity,
        *,
        previous: Entity | None = None,
    ) -> Written:
        self._fail()

    async def delete(self, entity_type: str, entity_id: str) -> None:
        self._fail()

    async def test_connection(self) -> str:
        self._fail()
