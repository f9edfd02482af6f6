"""The bundle templates: data files of the package, each a valid configuration document."""

from __future__ import annotations

from importlib import resources

import pytest

from provisor.configuration import document
from provisor.configuration.bundles import bundle, bundles
from provisor.errors import NotFoundError


def test_the_templates_are_package_data() -> None:
    folder = resources.files("provisor.configuration").joinpath("bundles")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".json"))
    assert names == ["directory-to-ldap-and-scim.json", "hr-to-identity-authentication.json"]
    assert [b.name for b in bundles()] == [n.removesuffix(".json") for n in names]


@pytest.mark.parametrize("name", ["directory-to-ldap-and-scim", "hr-to-identity-authentication"])
def test_each_template_is_a_valid_document(name: str) -> None:
    data = bundle(name)
    assert data["bundle"]["name"] == name
    assert data["bundle"]["title"] and len(data["bundle"]["description"]) > 80
    read, problems = document.read(data, {})
    assert problems == []
    assert len(read.systems) >= 3
    roles = {s.role.value for s in read.systems}
    assert roles == {"source", "target"}
    for system in read.systems:
        if system.type.id in ("identity-authentication", "scim", "ldap"):
            assert system.credential_keys, f"{system.name} names the credentials to enter"
    assert all(not s.normal["enabled"] for s in read.schedules), "off until a test job ran"


def test_listing_and_unknown_names() -> None:
    listed = {b.name: b for b in bundles()}
    hr = listed["hr-to-identity-authentication"].to_dict()
    assert hr["systems"][0] == {"name": "HR Employees", "type": "csv", "role": "source"}
    with pytest.raises(NotFoundError) as missing:
        bundle("salesforce")
    assert missing.value.message == (
        "No bundle 'salesforce'; the bundles are directory-to-ldap-and-scim, "
        "hr-to-identity-authentication."
    )
