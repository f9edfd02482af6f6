"""The console's systems pages: the list and its filters, a new system from its type's
properties, a system's page (properties with masked credentials, links, enable, delete,
export, import, connection test), and what a viewer may not do."""

from __future__ import annotations

import json

import orjson
import pytest

from provisor.admins.model import Role as AdminRole
from provisor.connectors.base import Role
from provisor.context import Context
from provisor.systems.model import NewSystem, System
from tests.console.conftest import Console, csrf_of, sign_in

ADMIN = Context.administrator("test")


def make(console: Console, name: str, role: str = "target", **properties: str) -> System:
    wanted = properties or ({"URL": "https://scim.example.org/v2"} if role != "source" else {})
    kind = "scim" if role != "source" else "local-identity-directory"
    return console.services.systems.create(
        ADMIN, NewSystem(name=name, type=kind, role=Role(role), properties=wanted)
    )


def test_the_list_filters_and_pages_on_the_server(console: Console) -> None:
    for n in range(23):
        make(console, f"Target {n:02}")
    make(console, "HR", "source")
    browser = console.signed_in("ada")
    first = browser.get("/console/systems")
    assert first.status_code == 200
    assert "1\u201320 of 24" in first.text
    assert 'rel="next"' in first.text
    second = browser.get("/console/systems?offset=20")
    assert "21\u201324 of 24" in second.text
    sources = browser.get("/console/systems?role=source")
    assert ">HR</a>" in sources.text and "Target 00" not in sources.text
    named = browser.get("/console/systems?q=get%200")
    assert "of 10" in named.text  # Target 00 .. Target 09
    escaped = browser.get("/console/systems?q=%25")  # a LIKE wildcard is a character
    assert "No system matches" in escaped.text
    disabled = browser.get("/console/systems?enabled=false")
    assert "No system matches" in disabled.text
    bad = browser.get("/console/systems?role=boss")
    assert bad.status_code == 400
    assert "role: one of" in bad.text


def test_incomplete_systems_show_their_problems(console: Console) -> None:
    console.services.systems.create(
        ADMIN, NewSystem(name="Bare", type="scim", role=Role.TARGET, properties={})
    )
    browser = console.signed_in("ada")
    listed = browser.get("/console/systems")
    assert "URL is required" in listed.text
    page = browser.get(f"/console/systems/{console.services.systems.show(ADMIN, 'Bare').id}")
    assert "cannot work yet" in page.text


def test_a_new_system_is_created_from_its_types_form(console: Console) -> None:
    source = make(console, "HR", "source")
    browser = console.signed_in("ada")
    types = browser.get("/console/systems/new?role=target")
    assert types.status_code == 200
    assert "SCIM System" in types.text and 'value="target" required checked' in types.text
    form = browser.get("/console/systems/new?role=target&type=scim")
    assert form.status_code == 200
    assert 'name="p.URL"' in form.text
    assert 'name="p.Password" type="password" value=""' in form.text
    assert "<select" in form.text  # choices
    created = browser.post(
        "/console/systems/new",
        data={
            "csrf": csrf_of(form),
            "role": "target",
            "type": "scim",
            "name": "Cloud",
            "enabled": "true",
            "sources": [source.id],
            "p.URL": "https://scim.example.org/v2",
            "p.User": "sync",
            "p.Password": "s3cret",
            "p.Authentication": "",
        },
    )
    assert created.status_code == 303, created.text
    system = console.services.systems.show(ADMIN, "Cloud")
    assert created.headers["location"] == f"/console/systems/{system.id}"
    assert system.source_system_ids == (source.id,)
    assert "Password" in system.credential_keys
    assert console.services.systems.effective_properties(ADMIN, system.id)["Password"] == "s3cret"
    page = browser.get(created.headers["location"])
    assert "System Cloud created." in page.text
    assert "s3cret" not in page.text


def test_a_refused_new_system_shows_the_form_again_with_the_values(console: Console) -> None:
    browser = console.signed_in("ada")
    form = browser.get("/console/systems/new?role=target&type=scim")
    refused = browser.post(
        "/console/systems/new",
        data={
            "csrf": csrf_of(form),
            "role": "target",
            "type": "scim",
            "name": "Bad/name",
            "description": "kept <b>",
            "p.URL": "ftp://nowhere",
            "p.Password": "never-shown",
        },
    )
    assert refused.status_code == 400
    assert "a system name has" in refused.text
    assert 'value="kept &lt;b&gt;"' in refused.text
    assert 'value="ftp://nowhere"' in refused.text
    assert "never-shown" not in refused.text
    named = browser.post(
        "/console/systems/new",
        data={"csrf": csrf_of(form), "role": "target", "type": "scim", "name": "Ok", "p.URL": "x"},
    )
    assert named.status_code == 400
    assert "URL" in named.text and "a URL starting with" in named.text
    assert console.services.systems.listing(ADMIN)[1] == 0
    unknown = browser.get("/console/systems/new?role=target&type=nope")
    assert unknown.status_code == 404


def test_properties_keep_masked_credentials_and_change_the_rest(console: Console) -> None:
    system = make(
        console, "Cloud", URL="https://scim.example.org/v2", User="u", Password="Pa55-one"
    )
    browser = console.signed_in("ada")
    page = browser.get(f"/console/systems/{system.id}")
    assert page.status_code == 200
    assert "Pa55-one" not in page.text and "*" * 40 not in page.text
    assert 'name="p.Password" type="password" value=""' in page.text
    token = csrf_of(page)
    saved = browser.post(
        f"/console/systems/{system.id}/properties",
        data={
            "csrf": token,
            "version": str(system.version),
            "p.URL": "https://scim.example.org/v2",
            "p.User": "",  # emptied: removed
            "p.Password": "",  # empty: unchanged
            "new_key": "custom.region",
            "new_value": "eu",
        },
    )
    assert saved.status_code == 303, saved.text
    effective = console.services.systems.effective_properties(ADMIN, system.id)
    assert effective["Password"] == "Pa55-one"
    assert "User" not in console.services.systems.show(ADMIN, system.id).properties
    assert effective["custom.region"] == "eu"
    # a moved URL needs the credentials again: the service says so, the form shows it
    moved = browser.post(
        f"/console/systems/{system.id}/properties",
        data={"csrf": token, "p.URL": "https://other.example.org/v2", "p.Password": ""},
    )
    assert moved.status_code == 400
    assert "requires entering the credentials again" in moved.text
    assert 'value="https://other.example.org/v2"' in moved.text
    again = browser.post(
        f"/console/systems/{system.id}/properties",
        data={"csrf": token, "p.URL": "https://other.example.org/v2", "p.Password": "Pa55-two"},
    )
    assert again.status_code == 303
    assert console.services.systems.effective_properties(ADMIN, system.id)["Password"] == "Pa55-two"
    cleared = browser.post(
        f"/console/systems/{system.id}/properties",
        data={"csrf": token, "p.Password": "", "clear.Password": "true"},
    )
    assert cleared.status_code == 303
    assert "Password" not in console.services.systems.show(ADMIN, system.id).properties
    stale = browser.post(
        f"/console/systems/{system.id}/properties",
        data={"csrf": token, "version": "1", "p.User": "late"},
    )
    assert stale.status_code == 412
    assert "read it again" in stale.text


def test_a_target_links_its_sources_and_a_source_its_targets(console: Console) -> None:
    hr = make(console, "HR", "source")
    crm = make(console, "CRM", "source")
    cloud = make(console, "Cloud")
    browser = console.signed_in("ada")
    page = browser.get(f"/console/systems/{cloud.id}")
    token = csrf_of(page)
    linked = browser.post(
        f"/console/systems/{cloud.id}/sources", data={"csrf": token, "sources": [hr.id, crm.id]}
    )
    assert linked.status_code == 303
    assert set(console.services.systems.show(ADMIN, cloud.id).source_system_ids) == {
        hr.id,
        crm.id,
    }
    source_page = browser.get(f"/console/systems/{hr.id}")
    assert f'href="/console/systems/{cloud.id}">Cloud</a>' in source_page.text
    unlinked = browser.post(
        f"/console/systems/{hr.id}/targets",
        data={"csrf": token, "target": cloud.id, "action": "unlink"},
    )
    assert unlinked.status_code == 303
    assert console.services.systems.show(ADMIN, cloud.id).source_system_ids == (crm.id,)
    relinked = browser.post(
        f"/console/systems/{hr.id}/targets", data={"csrf": token, "target": cloud.id}
    )
    assert relinked.status_code == 303
    assert hr.id in console.services.systems.show(ADMIN, cloud.id).source_system_ids
    wrong = browser.post(
        f"/console/systems/{hr.id}/targets", data={"csrf": token, "target": crm.id}
    )
    assert wrong.status_code == 400
    assert "not a target" in wrong.text


def test_enable_disable_rename_and_delete(console: Console) -> None:
    system = make(console, "Cloud")
    browser = console.signed_in("ada")
    token = csrf_of(browser.get(f"/console/systems/{system.id}"))
    assert browser.post(f"/console/systems/{system.id}/disable", data={"csrf": token}).is_redirect
    assert not console.services.systems.show(ADMIN, system.id).enabled
    page = browser.get(f"/console/systems/{system.id}")
    assert "Cloud disabled." in page.text and ">Enable</button>" in page.text
    assert browser.post(f"/console/systems/{system.id}/enable", data={"csrf": token}).is_redirect
    assert console.services.systems.show(ADMIN, system.id).enabled
    renamed = browser.post(
        f"/console/systems/{system.id}/details",
        data={"csrf": token, "name": "Cloud 2", "description": "new"},
    )
    assert renamed.status_code == 303
    assert console.services.systems.show(ADMIN, system.id).name == "Cloud 2"
    bad = browser.post(f"/console/systems/{system.id}/details", data={"csrf": token, "name": "a/b"})
    assert bad.status_code == 400 and "a system name has" in bad.text
    deleted = browser.post(f"/console/systems/{system.id}/delete", data={"csrf": token})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/console/systems"
    assert console.services.systems.listing(ADMIN)[1] == 0
    gone = browser.get(f"/console/systems/{system.id}")
    assert gone.status_code == 404


def test_export_then_import_under_a_new_name(console: Console) -> None:
    system = make(console, "Cloud", URL="https://scim.example.org/v2", Password="Pa55-one")
    browser = console.signed_in("ada")
    exported = browser.get(f"/console/systems/{system.id}/export")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == 'attachment; filename="Cloud.json"'
    data = exported.json()
    assert data["name"] == "Cloud" and "Pa55-one" not in exported.text
    form = browser.get("/console/systems/import")
    imported = browser.post(
        "/console/systems/import",
        data={"csrf": csrf_of(form), "name": "Cloud copy"},
        files={"file": ("Cloud.json", exported.content, "application/json")},
    )
    assert imported.status_code == 303, imported.text
    copy = console.services.systems.show(ADMIN, "Cloud copy")
    page = browser.get(imported.headers["location"])
    assert "Enter the credentials again: Password." in page.text
    assert copy.properties["URL"] == "https://scim.example.org/v2"
    for content, message in (
        (b"not json", "The file is not JSON"),
        (json.dumps({**data, "role": "boss"}).encode(), "role: the export has the role"),
        (b"", "Choose an export file"),
    ):
        refused = browser.post(
            "/console/systems/import",
            data={"csrf": csrf_of(form), "name": "Other"},
            files={"file": ("x.json", content, "application/json")},
        )
        assert refused.status_code == 400
        assert message in refused.text
        assert 'value="Other"' in refused.text


def test_a_proxy_shows_its_scim_url_and_exports_csv(console: Console) -> None:
    proxy = make(console, "Proxy", "proxy")
    browser = console.signed_in("ada")
    page = browser.get(f"/console/systems/{proxy.id}")
    url = f"http://console.test/ipsproxy/service/api/v1/scim/{proxy.id}"
    assert f'id="scim-url" type="text" value="{url}"' in page.text
    assert 'data-copy="scim-url"' in page.text
    csv = browser.get(f"/console/systems/{proxy.id}/export?format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    target = make(console, "Target")
    refused = browser.get(f"/console/systems/{target.id}/export?format=csv")
    assert refused.status_code == 400


def test_the_connection_test_answers_inline(console: Console) -> None:
    incomplete = console.services.systems.create(
        ADMIN, NewSystem(name="Bare", type="scim", role=Role.TARGET, properties={})
    )
    source = make(console, "Directory", "source")
    browser = console.signed_in("ada")
    token = csrf_of(browser.get(f"/console/systems/{incomplete.id}"))
    failed = browser.post(
        f"/console/systems/{incomplete.id}/test",
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert failed.status_code == 200
    assert "Connection failed: URL is required" in failed.text
    assert "<html" not in failed.text
    works = browser.post(
        f"/console/systems/{source.id}/test", headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert "Connection works" in works.text
    plain = browser.post(f"/console/systems/{source.id}/test", data={"csrf": token})
    assert plain.status_code == 303


def test_a_viewer_sees_but_changes_nothing(console: Console) -> None:
    system = make(console, "Cloud", URL="https://scim.example.org/v2", Password="Pa55-one")
    browser = console.signed_in("vera", AdminRole.VIEWER)
    page = browser.get(f"/console/systems/{system.id}")
    assert page.status_code == 200
    assert "(a credential, never shown)" in page.text
    assert "properties-form" not in page.text and "test-connection" not in page.text
    assert "New system" not in browser.get("/console/systems").text
    token = csrf_of(page)
    for path, data in (
        ("properties", {"p.URL": "https://evil.example.org"}),
        ("disable", {}),
        ("delete", {}),
        ("test", {}),
    ):
        refused = browser.post(f"/console/systems/{system.id}/{path}", data={"csrf": token, **data})
        assert refused.status_code == 403, path
    form = browser.post(
        "/console/systems/new",
        data={"csrf": token, "role": "target", "type": "scim", "name": "X", "p.URL": "https://a.b"},
    )
    assert form.status_code == 403
    after = console.services.systems.show(ADMIN, system.id)
    assert after.enabled and after.properties["URL"] == "https://scim.example.org/v2"
    assert console.services.systems.listing(ADMIN)[1] == 1


@pytest.mark.parametrize("path", ["/console/systems", "/console/systems/new"])
def test_pages_need_a_session(console: Console, path: str) -> None:
    assert console.browser().get(path).status_code == 303


def test_an_export_is_readable_json(console: Console) -> None:
    system = make(console, "Cloud")
    browser = console.signed_in("ada")
    exported = browser.get(f"/console/systems/{system.id}/export")
    assert orjson.loads(exported.content)["provisorExport"] == 1


def test_another_tenants_pages_stay_in_that_tenant(console: Console) -> None:
    every = Context.system("test", tenant="*")
    console.services.tenants.create(Context(every.actor, "_installation"), "other")
    inside = Context(ADMIN.actor, "other")
    console.services.administrators.create(inside, "ada", AdminRole.ADMINISTRATOR, "p" * 12)
    proxy = console.services.systems.create(
        inside, NewSystem(name="Proxy", type="local-identity-directory", role=Role.PROXY)
    )
    make(console, "Default tenant")
    browser = console.browser()
    assert sign_in(browser, "ada", "p" * 12, "/t/other").status_code == 303
    listed = browser.get("/t/other/console/systems")
    assert listed.status_code == 200
    assert f'href="/t/other/console/systems/{proxy.id}"' in listed.text
    assert "Default tenant" not in listed.text
    page = browser.get(f"/t/other/console/systems/{proxy.id}")
    assert f"http://console.test/t/other/ipsproxy/service/api/v1/scim/{proxy.id}" in page.text
    token = csrf_of(page)
    disabled = browser.post(f"/t/other/console/systems/{proxy.id}/disable", data={"csrf": token})
    assert disabled.headers["location"] == f"/t/other/console/systems/{proxy.id}"
    assert not console.services.systems.show(inside, proxy.id).enabled
