"""The permission ``view``: read-only administration. ``admin`` holds it; it holds nothing
else; a refusal of a read names it."""

from __future__ import annotations

import pytest

from provisor.auth.clients import ClientService
from provisor.context import (
    Actor,
    ActorKind,
    Context,
    Permission,
    parse_permissions,
    permissions_of,
)
from provisor.directory.bulk import BulkProcessor
from provisor.directory.service import Directory
from provisor.errors import PermissionDeniedError
from provisor.types import EntityType


def client(*permissions: Permission) -> Context:
    return Context(Actor(ActorKind.CLIENT, "watcher", frozenset(permissions)))


def test_admin_holds_view_and_view_holds_nothing_else() -> None:
    assert parse_permissions(["view"]) == {Permission.VIEW}
    assert client(Permission.ADMIN).allows(Permission.VIEW)
    viewer = client(Permission.VIEW)
    assert viewer.allows(Permission.VIEW)
    for other in Permission:
        if other is not Permission.VIEW:
            assert not viewer.allows(other), other
    assert not viewer.allows()  # none named: admin


def test_a_refused_read_names_view_and_admin() -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        client(Permission.PROXY_API).require(Permission.VIEW, action="list systems")
    assert "one of the permissions view or admin" in str(refused.value)


def test_the_directory_reads_with_view_and_changes_without() -> None:
    viewer = client(Permission.VIEW)
    for kind in EntityType:
        assert Directory.may_read(viewer, kind)
        assert not Directory.may(viewer, kind)
        assert Permission.VIEW in Directory.readers(kind)
    for read in (Directory.get, Directory.search, Directory.search_all, Directory.schemas):
        assert Permission.VIEW in permissions_of(read), read
    for change in (Directory.create, Directory.patch, Directory.delete, BulkProcessor.run):
        assert Permission.VIEW not in permissions_of(change), change


def test_clients_are_read_with_view_and_changed_by_admin() -> None:
    for read in (ClientService.listing, ClientService.show):
        assert permissions_of(read) == (Permission.VIEW,)
    for change in (ClientService.create, ClientService.update, ClientService.rotate_secret):
        assert permissions_of(change) == ()
