"""The transformation pages of the console: editor with located problems, the live check,
the table view, versions with their differences, apply, reset, "try it" with traces, and the
validation of samples."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from provisor.admins.model import Role as AdminRole
from provisor.connectors.base import Role
from provisor.context import Context
from provisor.systems.model import NewSystem, System
from provisor.types import EntityType
from tests.console.conftest import Console, csrf_of

CTX = Context.system("test")
READ = {
    "user": {
        "mappings": [
            {"sourcePath": "$.userName", "targetPath": "$.userName"},
            {
                "sourcePath": "$.name.familyName",
                "targetPath": "$.name.familyName",
                "functions": [{"function": "toUpperCaseString"}],
                "optional": True,
            },
            {
                "constant": "staff",
                "targetPath": "$.userType",
                "condition": "$.active == true",
            },
            {"sourcePath": "$.id", "targetVariable": "entityIdSourceSystem"},
        ]
    }
}
ADA = {"id": "1", "userName": "ada", "name": {"familyName": "Lovelace"}, "active": False}


def _source(console: Console, name: str = "Directory") -> System:
    return console.services.systems.create(
        CTX,
        NewSystem(
            name=name,
            type="local-identity-directory",
            role=Role.SOURCE,
            transformations={"read": READ},
        ),
    )


def _target(console: Console, source: System, name: str = "Target") -> System:
    return console.services.systems.create(
        CTX,
        NewSystem(
            name=name,
            type="local-identity-directory",
            role=Role.TARGET,
            sourceSystemIds=[source.id],  # type: ignore[call-arg]
        ),
    )


def _page(browser: TestClient, path: str) -> str:
    page = browser.get(path)
    assert page.status_code == 200, page.text
    return page.text


def test_the_overview_links_each_kind_and_the_editor_shows_the_document(console: Console) -> None:
    system = _source(console)
    browser = console.signed_in("ada")
    overview = _page(browser, f"/console/systems/{system.id}/transformations")
    assert f"/console/systems/{system.id}/transformations/read" in overview
    assert "Validate samples" in overview
    editor = _page(browser, f"/console/systems/{system.id}/transformations/read")
    assert 'id="document"' in editor and "data-editor" in editor
    assert "$.name.familyName" in editor
    assert "No problem: this document can be saved." in editor
    assert '/read" aria-current="page">Editor</a>' in editor
    assert "codemirror.js" in editor and "transform.js" in editor
    assert browser.get(f"/console/systems/{system.id}/transformations/write").status_code == 400


def test_saving_makes_a_version_and_problems_are_listed_with_their_place(
    console: Console,
) -> None:
    system = _source(console)
    browser = console.signed_in("ada")
    path = f"/console/systems/{system.id}/transformations/read"
    token = csrf_of(browser.get(path))
    bad = (
        '{\n  "user": {\n    "mappings": [\n'
        '      {"sourcePath": "$.x[", "targetPath": "$.y"}\n    ]\n  }\n}'
    )
    refused = browser.post(path, data={"csrf": token, "text": bad, "description": "broken"})
    assert refused.status_code == 400
    assert "line 4, column 8" in refused.text
    assert "user.mappings[0].sourcePath" in refused.text
    assert "$.x[" in refused.text  # the text typed is kept
    assert console.services.systems.read_transformation(CTX, system.id, "read").version == 1
    good = json.dumps({"user": {"mappings": [{"sourcePath": "$.userName", "targetPath": "$.u"}]}})
    saved = browser.post(path, data={"csrf": token, "text": good, "description": "simpler"})
    assert saved.status_code == 303
    current = console.services.systems.read_transformation(CTX, system.id, "read")
    assert (current.version, current.description, current.author) == (2, "simpler", "ada")


def test_the_live_check_answers_located_problems_as_json(console: Console) -> None:
    system = _source(console)
    browser = console.signed_in("ada")
    path = f"/console/systems/{system.id}/transformations/read"
    token = csrf_of(browser.get(path))
    text = '{"user": {"mappings": [{"sourcePath": "$.a", "targetPath": "$.b", "bogus": 1}]}}'
    answer = browser.post(f"{path}/check", json={"text": text}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200
    (problem,) = answer.json()["problems"]
    assert problem["path"] == "user.mappings[0].bogus"
    assert (problem["line"], problem["column"]) == (1, text.index('"bogus"') + 1)
    assert problem["endColumn"] == text.index("}") + 1
    broken = browser.post(
        f"{path}/check", json={"text": '{"user": '}, headers={"X-CSRF-Token": token}
    )
    (problem,) = broken.json()["problems"]
    assert "not valid JSON" in problem["message"] and problem["line"] == 1
    ok = browser.post(
        f"{path}/check", json={"text": json.dumps(READ)}, headers={"X-CSRF-Token": token}
    )
    assert ok.json() == {"problems": []}
    forged = browser.post(f"{path}/check", json={"text": text})
    assert forged.status_code == 403


def test_the_table_view_shows_and_rewrites_the_mappings(console: Console) -> None:
    system = _source(console)
    browser = console.signed_in("ada")
    path = f"/console/systems/{system.id}/transformations/read/table"
    page = browser.get(path)
    assert page.status_code == 200
    assert 'name="user:1|sourcePath" value="$.name.familyName"' in page.text
    assert "constant &#34;staff&#34;" in page.text or "constant &quot;staff&quot;" in page.text
    assert 'name="user:2|sourcePath"' not in page.text  # a constant: no path to edit
    token = csrf_of(page)
    saved = browser.post(
        path,
        data={
            "csrf": token,
            "description": "table",
            "user:1|sourcePath": "$.name.givenName",
            "user:1|functions": "",
            "user:1|scope": "createEntity",
            "user:0|targetPath": "$.login",
        },
    )
    assert saved.status_code == 303, saved.text
    current = console.services.systems.read_transformation(CTX, system.id, "read")
    data = json.loads(current.text)["user"]["mappings"]
    assert data[1]["sourcePath"] == "$.name.givenName"
    assert "functions" not in data[1] and data[1]["scope"] == "createEntity"
    assert data[0]["targetPath"] == "$.login"
    assert data[2] == READ["user"]["mappings"][2]  # untouched rows stay as they were
    refused = browser.post(
        path, data={"csrf": token, "description": "x", "user:0|functions": "[oops"}
    )
    assert refused.status_code == 400
    assert "row 1, functions: not JSON" in refused.text
    invalid = browser.post(
        path, data={"csrf": token, "description": "x", "user:0|targetPath": "$.[["}
    )
    assert invalid.status_code == 400
    assert "user.mappings[0].targetPath" in invalid.text
    assert console.services.systems.read_transformation(CTX, system.id, "read").version == 2


def test_versions_diff_apply_and_reset(console: Console) -> None:
    system = _source(console)
    systems = console.services.systems
    changed = json.loads(json.dumps(READ))
    changed["user"]["mappings"][0]["targetPath"] = "$.login"
    systems.save_transformation(CTX, system.id, "read", changed, description="login")
    browser = console.signed_in("ada")
    path = f"/console/systems/{system.id}/transformations/read/versions"
    page = _page(browser, path)
    assert "login" in page and "Initial version" in page
    diff = _page(browser, f"{path}?a=1&b=2")
    assert 'id="diff"' in diff
    assert "+1 lines added" in diff and "\u22121 lines removed" in diff
    assert 'class="mark diff-removed">-</td>' in diff
    assert 'class="mark diff-added">+</td>' in diff
    assert "&#34;$.login&#34;" in diff or "&quot;$.login&quot;" in diff
    assert _page(browser, f"{path}/1").count("$.userName") >= 2
    token = csrf_of(browser.get(path))
    applied = browser.post(f"{path}/1/apply", data={"csrf": token})
    assert applied.status_code == 303
    current = systems.read_transformation(CTX, system.id, "read")
    assert (current.version, current.description) == (3, "Applied version 1")
    assert json.loads(current.text) == READ
    reset = browser.post(
        f"/console/systems/{system.id}/transformations/read/reset",
        data={"csrf": token, "to": "default"},
    )
    assert reset.status_code == 303
    current = systems.read_transformation(CTX, system.id, "read")
    assert current.version == 4 and current.description.startswith("Default")
    bad = browser.post(
        f"/console/systems/{system.id}/transformations/read/reset",
        data={"csrf": token, "to": "yesterday"},
    )
    assert bad.status_code == 400
    assert "Reset to" in bad.text


def test_versions_are_paged(console: Console) -> None:
    system = _source(console)
    for number in range(2, 26):
        console.services.systems.save_transformation(
            CTX, system.id, "read", READ, description=f"change {number}"
        )
    browser = console.signed_in("ada")
    path = f"/console/systems/{system.id}/transformations/read/versions"
    first = _page(browser, path)
    assert "change 25" in first and "change 5<" not in first and "1\u201320 of 25" in first
    second = _page(browser, f"{path}?offset=20")
    assert "change 5<" in second and "Initial version" in second
    assert browser.get(f"{path}?offset=-1").status_code in (400, 422)


def test_try_it_shows_each_mappings_trace(console: Console) -> None:
    system = _source(console)
    browser = console.signed_in("ada")
    path = f"/console/systems/{system.id}/transformations/read/try"
    token = csrf_of(browser.get(path))
    page = browser.post(
        path, data={"csrf": token, "entity": json.dumps(ADA), "entity_type": "user"}
    )
    assert page.status_code == 200, page.text
    text = page.text
    assert "Transformed" in text
    assert '<code>toUpperCaseString</code> → <code class="value">"LOVELACE"</code>' in text
    assert "condition [$.active == true] is not fulfilled" in text
    assert "badge-skipped" in text and "badge-applied" in text
    bad = browser.post(path, data={"csrf": token, "entity": "[1]", "entity_type": "user"})
    assert bad.status_code == 400 and "is a JSON object" in bad.text
    wrong = browser.post(
        path, data={"csrf": token, "entity": "{}", "entity_type": "user", "operation": "nope"}
    )
    assert wrong.status_code == 400 and "The operation is one of" in wrong.text


def test_try_it_fetches_a_directory_user_by_user_name(console: Console) -> None:
    system = _source(console)
    console.services.directory.create(
        CTX,
        EntityType.USER,
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "grace",
            "name": {"familyName": "Hopper"},
        },
        "/scim",
    )
    browser = console.signed_in("ada")
    path = f"/console/systems/{system.id}/transformations/read/try"
    page = browser.get(path, params={"userName": "grace"})
    assert page.status_code == 200, page.text
    assert "HOPPER" in page.text and "Transformed" in page.text
    missing = browser.get(path, params={"userName": "nobody"})
    assert missing.status_code == 200 and "No user &#39;nobody&#39; found." in missing.text


def test_validation_runs_samples_through_every_target(console: Console) -> None:
    source = _source(console)
    _target(console, source, "Alpha")
    browser = console.signed_in("ada")
    path = f"/console/systems/{source.id}/validate"
    token = csrf_of(browser.get(path))
    csv = "id,userName,name.familyName,active\n7,ada,Lovelace,\n"
    page = browser.post(
        path,
        data={"csrf": token, "format": "auto", "entity_type": "user"},
        files={"file": ("users.csv", csv.encode(), "text/csv")},
    )
    assert page.status_code == 200, page.text
    assert "Written to Alpha (create)" in page.text
    assert "LOVELACE" in page.text
    pasted = browser.post(
        path, data={"csrf": token, "sample": json.dumps([ADA]), "entity_type": "user"}
    )
    assert pasted.status_code == 200 and "Read by Directory" in pasted.text
    too_big = browser.post(
        path,
        data={"csrf": token},
        files={"file": ("big.json", b"[" + b" " * 1_000_001 + b"]", "application/json")},
    )
    assert too_big.status_code == 400 and "larger than" in too_big.text
    many = json.dumps([{"userName": f"u{i}"} for i in range(101)])
    assert browser.post(path, data={"csrf": token, "sample": many}).status_code == 400
    broken = browser.post(path, data={"csrf": token, "sample": "{oops", "format": "json"})
    assert broken.status_code == 400 and "not JSON" in broken.text
    target = console.services.systems.listing(CTX, role=Role.TARGET)[0][0]
    assert browser.get(f"/console/systems/{target.id}/validate").status_code == 400


def test_a_viewer_sees_but_cannot_change(console: Console) -> None:
    system = _source(console)
    browser = console.signed_in("vera", AdminRole.VIEWER)
    base = f"/console/systems/{system.id}/transformations/read"
    editor = _page(browser, base)
    assert "readonly" in editor and 'id="save"' not in editor and "Reset to" not in editor
    table = _page(browser, f"{base}/table")
    assert "$.name.familyName" in table
    assert 'name="user:0|sourcePath"' not in table and 'id="save-table"' not in table
    token = csrf_of(browser.get(base))
    answer = browser.post(f"{base}/check", json={"text": "{}"}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200  # checking is reading
    forged = browser.post(
        base, data={"csrf": token, "text": json.dumps(READ), "description": "sneaky"}
    )
    assert forged.status_code == 403
    assert browser.post(f"{base}/versions/1/apply", data={"csrf": token}).status_code == 403
    assert browser.post(f"{base}/reset", data={"csrf": token}).status_code == 403
    assert (
        browser.post(f"{base}/table", data={"csrf": token, "user:0|targetPath": "$.x"}).status_code
        == 403
    )
    assert console.services.systems.read_transformation(CTX, system.id, "read").version == 1
    tried = browser.post(f"{base}/try", data={"csrf": token, "entity": json.dumps(ADA)})
    assert tried.status_code == 200


@pytest.mark.parametrize("path", ["", "/read", "/read/table", "/read/versions", "/read/try"])
def test_an_unknown_system_is_a_readable_404(console: Console, path: str) -> None:
    browser = console.signed_in("ada")
    page = browser.get(f"/console/systems/nope/transformations{path}")
    assert page.status_code == 404
    assert "No system" in page.text
