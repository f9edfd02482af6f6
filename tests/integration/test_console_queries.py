"""What the console's systems and certificates pages added to the services, on SQLite and
PostgreSQL: systems by a part of their name, inbound certificates a page at a time, and a
generated .p12 for a source or proxy system."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from provisor.admins.model import Role as AdminRole
from provisor.admins.model import role_permissions
from provisor.connectors.base import Role
from provisor.context import Actor, ActorKind, Context
from provisor.errors import InputError, PermissionDeniedError
from provisor.runtime import Services
from provisor.systems.model import NewSystem
from tests.certs.conftest import self_signed

ADMIN = Context.administrator("tester")
VIEWER = Context(Actor(ActorKind.ADMINISTRATOR, "vera", role_permissions(AdminRole.VIEWER)))


def _source(services: Services, name: str) -> str:
    new = NewSystem(name=name, type="local-identity-directory", role=Role.SOURCE)
    return services.systems.create(ADMIN, new).id


def test_systems_by_a_part_of_their_name(services: Services) -> None:
    for name in ("HR Berlin", "hr_paris", "CRM", "H.R"):
        _source(services, name)
    found, total = services.systems.listing(ADMIN, name="hr")
    assert total == 2
    assert sorted(s.name for s in found) == ["HR Berlin", "hr_paris"]
    assert services.systems.listing(ADMIN, name="_")[1] == 1  # a wildcard is a character
    assert services.systems.listing(ADMIN, name="%")[1] == 0
    assert services.systems.listing(ADMIN, name=".")[1] == 1
    page, total = services.systems.listing(ADMIN, name="r", offset=1, limit=1)
    assert total == 4 and len(page) == 1


def test_inbound_certificates_a_page_at_a_time(services: Services) -> None:
    hr = _source(services, "HR")
    other = _source(services, "Other")
    certs = services.certificates
    for n in range(5):
        cert, _ = self_signed(f"caller {n}")
        certs.import_inbound(ADMIN, cert.public_bytes(Encoding.PEM), system=hr)
    cert, _ = self_signed("elsewhere")
    certs.import_inbound(ADMIN, cert.public_bytes(Encoding.PEM), system=other)
    every = [c.details.fingerprint for c in certs.inbound(ADMIN)]
    page, total = certs.inbound_page(ADMIN, offset=2, limit=3)
    assert total == 6
    assert [c.details.fingerprint for c in page] == every[2:5]
    mine, total = certs.inbound_page(ADMIN, system="HR", limit=10)
    assert total == 5 and {c.owner_name for c in mine} == {"HR"}


def test_a_generated_certificate_for_a_system(services: Services) -> None:
    hr = _source(services, "HR")
    cert, bundle = services.certificates.generate_inbound(
        ADMIN, None, "idm", "a-password", system=hr, key_type="EC-P256"
    )
    assert cert.system_id == hr and cert.client_id is None and bundle
    assert f"CN=idm ({hr})" == cert.details.subject
    with pytest.raises(InputError, match="to a client or to a system"):
        services.certificates.generate_inbound(ADMIN, None, "idm", "a-password")
    target = services.systems.create(
        ADMIN,
        NewSystem(
            name="T",
            type="scim",
            role=Role.TARGET,
            properties={"URL": "https://scim.example.org/v2"},
        ),
    )
    with pytest.raises(InputError, match="inbound certificates are for source"):
        services.certificates.generate_inbound(ADMIN, None, "idm", "a-password", system=target.id)


def test_a_viewer_pages_but_does_not_generate(services: Services) -> None:
    hr = _source(services, "HR")
    assert services.certificates.inbound_page(VIEWER)[1] == 0
    assert services.systems.listing(VIEWER, name="h")[1] == 1
    with pytest.raises(PermissionDeniedError):
        services.certificates.generate_inbound(VIEWER, None, "idm", "a-password", system=hr)


def test_outbound_certificates_of_a_page_of_systems(services: Services) -> None:
    ids = [_source(services, f"S{n}") for n in range(4)]
    certs = services.certificates
    first = certs.generate_outbound(ADMIN, ids[1], key_type="EC-P256")
    second = certs.generate_outbound(ADMIN, ids[1], key_type="EC-P256")
    certs.set_auto_regenerate(ADMIN, ids[2], True)
    listings, total = certs.outbound_listings(ADMIN, offset=1, limit=2)
    assert total == 4
    assert [x.system_name for x in listings] == ["S1", "S2"]
    assert [c.details.fingerprint for c in listings[0].certificates] == [
        first.details.fingerprint,
        second.details.fingerprint,
    ]
    assert listings[0].certificates[0].active and not listings[0].auto_regenerate
    assert listings[1].certificates == [] and listings[1].auto_regenerate
    assert services.systems.show(ADMIN, ids[0]).transformations == {"read": 1}
