"""The LDAP Server and Microsoft Active Directory connectors: the async face of ``Directory``.

python-ldap blocks, so every call runs in a thread (``asyncio.to_thread``) on a connection
lent by a small pool: at most ``POOL_SIZE`` connections, each used by one call at a time. A
read keeps its connection from its first page to its last (paged-results cookies belong to a
connection). python-ldap is imported when a connector is built, not when this module is: a
missing python-ldap is a ConfigError that says how to install it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, TypeVar

from provisor.connectors.base import (
    Capabilities,
    Connector,
    ConnectorConfig,
    ConnectorError,
    Entity,
    InvalidEntity,
    Page,
    Unsupported,
    Written,
)
from provisor.connectors.ldap.options import LDAPOptions
from provisor.connectors.ldap.types import LDAP, MICROSOFT_AD
from provisor.connectors.types import ConnectorType
from provisor.errors import ConfigError
from provisor.types import EntityType

if TYPE_CHECKING:
    from provisor.connectors.ldap.client import Session
    from provisor.connectors.ldap.dialects import Dialect
    from provisor.connectors.ldap.directory import Directory
    from provisor.connectors.ldap.writes import Writer

T = TypeVar("T")
POOL_SIZE = 4  # connections per system (the measured optimum is 2-4 threads)
MISSING = (
    "The LDAP connectors need python-ldap, which is not installed or cannot load ({error}). "
    "Install it with: pip install 'provisor[ldap]' (it builds from source: on Debian or "
    "Ubuntu first run apt-get install libldap2-dev libsasl2-dev, plus gcc and python3-dev)."
)


def _load(options: LDAPOptions, active_directory: bool) -> tuple[Directory, Writer]:
    """The reads and the writes of a system (python-ldap is imported here)."""
    try:
        import ldap  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:
        raise ConfigError(MISSING.format(error=exc)) from exc
    from provisor.connectors.ldap.dialects import ActiveDirectory, Dialect
    from provisor.connectors.ldap.directory import Directory
    from provisor.connectors.ldap.writes import Writer

    dialect: Dialect = ActiveDirectory() if active_directory else Dialect()
    directory = Directory(options, dialect)
    return directory, Writer(directory)


class LDAPConnector(Connector):
    """An LDAP v3 server (OpenLDAP, 389 DS, ...): users and groups under their paths."""

    capabilities = Capabilities(delta_read=True, patch=True, membership=True)
    shared = True  # a pool of bound connections
    connector_type: ClassVar[ConnectorType] = LDAP
    active_directory: ClassVar[bool] = False

    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__(config)
        self.options = LDAPOptions.parse(config, self.connector_type)
        self._directory, self._writer = _load(self.options, self.active_directory)
        self._slots = asyncio.Semaphore(POOL_SIZE)
        self._idle: list[Session] = []
        self._closed = False

    # -- the pool ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Session]:
        """A connection for one call (or one read), returned to the pool afterwards."""
        async with self._slots:
            if self._closed:
                raise ConnectorError(f"the connector of {self.config.system_name} is closed")
            session = self._idle.pop() if self._idle else self._directory.session()
            session.lend()
            try:
                yield session
            except asyncio.CancelledError:
                # A thread may still be using the connection: never lend it again.
                asyncio.get_running_loop().run_in_executor(None, session.close)
                raise
            except BaseException:
                await self._give_back(session)
                raise
            await self._give_back(session)

    async def _give_back(self, session: Session) -> None:
        if session.broken or self._closed:
            await asyncio.to_thread(session.close)
        else:
            self._idle.append(session)

    async def _run(self, call: Callable[[Session], T]) -> T:
        async with self._session() as session:
            return await asyncio.to_thread(call, session)

    # -- the interface ----------------------------------------------------------------------------

    async def read(self, entity_type: str, *, delta: str | None = None) -> AsyncIterator[Page]:
        async with self._session() as session:
            reader = self._directory.reader(session, entity_type, delta)
            last = False
            while not last:
                page, last = await asyncio.to_thread(reader.next_page)
                yield page

    async def get(self, entity_type: str, entity_id: str) -> Entity | None:
        return await self._run(lambda s: self._directory.get(s, entity_type, entity_id))

    async def find(self, entity_type: str, attribute: str, value: str) -> list[Entity]:
        return await self._run(lambda s: self._directory.find(s, entity_type, attribute, value))

    async def create(
        self, entity_type: str, entity: Entity, *, entity_id: str | None = None
    ) -> Written:
        return await self._run(lambda s: self._writer.create(s, entity_type, entity, entity_id))

    async def update(
        self, entity_type: str, entity_id: str, entity: Entity, *, previous: Entity | None = None
    ) -> Written:
        return await self._run(
            lambda s: self._writer.update(s, entity_type, entity_id, entity, previous)
        )

    async def delete(self, entity_type: str, entity_id: str) -> None:
        await self._run(lambda s: self._writer.delete(s, entity_type, entity_id))

    async def change_members(
        self, group_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        await self._run(lambda s: self._writer.change_members(s, group_id, add, remove))

    def unique_attributes(self, entity_type: str) -> tuple[str, ...]:
        options = self.options.user if entity_type == EntityType.USER else self.options.group
        return () if options.id_is_dn else (options.id_attribute,)

    def entity_id(self, entity_type: str, entity: Entity) -> str | None:
        options = self.options.user if entity_type == EntityType.USER else self.options.group
        if options.id_is_dn:
            dn = entity.get("dn")
            return dn if isinstance(dn, str) else None
        values = entity.get(options.id_attribute)
        if isinstance(values, list) and values and isinstance(values[0], str):
            return values[0]
        return values if isinstance(values, str) else None

    def delta_token_after(self, timestamp: str) -> str:
        """``modifyTimestamp`` as of an ISO 8601 time (seconds: a change in that second is
        included). Active Directory overrides this: its delta reads go by USN."""
        try:
            moment = datetime.fromisoformat(timestamp.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidEntity(f"{timestamp!r} is not an ISO 8601 timestamp") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")

    async def test_connection(self) -> str:
        return await self._run(self._directory.test)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for session in idle:
            await asyncio.to_thread(session.close)


class ActiveDirectoryConnector(LDAPConnector):
    """Microsoft Active Directory: ``sAMAccountName`` always read, delta reads by
    ``uSNChanged``, and nested groups flattened when ``ad.group.flatten`` is true."""

    connector_type = MICROSOFT_AD
    active_directory = True

    def delta_token_after(self, timestamp: str) -> str:
        raise Unsupported("Active Directory reads changes by update sequence number, not by time")
