"""Discovery endpoints and custom schemas (SAP's model and limits)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.helpers import ENTERPRISE, USER, create, patch, scim_error, user_body

CUSTOM = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Badge"


def badge_schema(**extra: Any) -> dict[str, Any]:
    return {
        "id": CUSTOM,
        "name": "Badge",
        "description": "Building access",
        "attributes": [
            {"name": "badgeNumber", "type": "string", "uniqueness": "server", "caseExact": True},
            {"name": "floor", "type": "integer"},
            {"name": "escort", "type": "boolean", "required": True},
            {
                "name": "zones",
                "type": "complex",
                "multiValued": True,
                "subAttributes": [
                    {"name": "code", "type": "string"},
                    {"name": "since", "type": "dateTime"},
                ],
            },
        ],
        **extra,
    }


def test_discovery_endpoints(scim: httpx.Client) -> None:
    config = scim.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["sort"]["supported"]
    assert config["etag"]["supported"] and config["filter"]["maxResults"] == 1000
    assert {s["type"] for s in config["authenticationSchemes"]} == {"httpbasic", "oauthbearertoken"}
    types = scim.get("/ResourceTypes").json()
    assert {r["id"] for r in types["Resources"]} == {"User", "Group"}
    user_type = scim.get("/ResourceTypes/User").json()
    assert user_type["endpoint"] == "/Users"
    assert {e["schema"] for e in user_type["schemaExtensions"]} == {ENTERPRISE}
    schemas = {s["id"] for s in scim.get("/Schemas").json()["Resources"]}
    assert {USER, ENTERPRISE, "urn:ietf:params:scim:schemas:extension:sap:2.0:User"} <= schemas
    user_schema = scim.get(f"/Schemas/{USER}").json()
    password = next(a for a in user_schema["attributes"] if a["name"] == "password")
    assert password["returned"] == "never" and password["mutability"] == "writeOnly"
    scim_error(scim.get("/Schemas/urn:nope"), 404)
    scim_error(scim.get("/ResourceTypes/Widget"), 404)


def test_custom_schema_lifecycle(scim: httpx.Client) -> None:
    created = scim.post("/Schemas", json=badge_schema())
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(f"/Schemas/{CUSTOM}")
    assert scim.get(f"/Schemas/{CUSTOM}").json()["attributes"][0]["name"] == "badgeNumber"
    user_type = scim.get("/ResourceTypes/User").json()
    assert CUSTOM in {e["schema"] for e in user_type["schemaExtensions"]}

    body = user_body(schemas=[USER, CUSTOM])
    body[CUSTOM] = {
        "badgeNumber": "B-1",
        "floor": 3,
        "escort": False,
        "zones": [{"code": "lab", "since": "2024-05-01T10:00:00+02:00"}],
    }
    user = create(scim, "/Users", body)
    assert user[CUSTOM]["zones"][0]["since"] == "2024-05-01T08:00:00.000000Z"
    found = scim.get("/Users", params={"filter": f"{CUSTOM}:floor gt 2"}).json()
    assert [r["id"] for r in found["Resources"]] == [user["id"]]
    zones = scim.get("/Users", params={"filter": f'{CUSTOM}:zones[code eq "LAB"]'}).json()
    assert zones["totalResults"] == 1

    wrong_type = user_body(schemas=[USER, CUSTOM])
    wrong_type[CUSTOM] = {"escort": True, "floor": "third"}
    scim_error(scim.post("/Users", json=wrong_type), 400, "invalidValue")
    missing_required = user_body(schemas=[USER, CUSTOM])
    missing_required[CUSTOM] = {"floor": 1}
    scim_error(scim.post("/Users", json=missing_required), 400, "invalidValue")
    same_badge = user_body(schemas=[USER, CUSTOM])
    same_badge[CUSTOM] = {"badgeNumber": "B-1", "escort": True}
    scim_error(scim.post("/Users", json=same_badge), 409, "uniqueness")
    op = patch({"op": "replace", "path": f"{CUSTOM}:floor", "value": 4})
    assert scim.patch(f"/Users/{user['id']}", json=op).json()[CUSTOM]["floor"] == 4

    # Deleting the schema deletes its values, and frees its unique values.
    assert scim.delete(f"/Schemas/{CUSTOM}").status_code == 204
    after = scim.get(f"/Users/{user['id']}").json()
    assert CUSTOM not in after and CUSTOM not in after["schemas"]
    assert after["meta"]["version"] != user["meta"]["version"]
    scim_error(scim.get(f"/Schemas/{CUSTOM}"), 404)
    scim_error(scim.post("/Users", json=same_badge), 400, "invalidValue")  # unknown now
    assert scim.post("/Schemas", json=badge_schema()).status_code == 201
    assert create(scim, "/Users", same_badge)[CUSTOM]["badgeNumber"] == "B-1"


def test_invalid_custom_schemas_report_every_problem(scim: httpx.Client) -> None:
    bad = {
        "id": "not a urn",
        "name": "Other",
        "attributes": [
            {"name": "1st", "type": "string"},
            {"name": "tags", "type": "string", "multiValued": True},
            {"name": "box", "type": "complex"},
            {"name": "mode", "type": "enum"},
            {"name": "x", "type": "string", "mutability": "sometimes"},
        ],
    }
    detail = scim_error(scim.post("/Schemas", json=bad), 400, "invalidValue")["detail"]
    for fragment in [
        "id:",
        "attributes[0].name",
        "attributes[1].multiValued",
        "attributes[2].subAttributes",
        "attributes[3].type",
        "attributes[4].mutability",
    ]:
        assert fragment in detail, (fragment, detail)
    scim_error(scim.post("/Schemas", json=badge_schema(name="Wrong")), 400, "invalidValue")
    builtin = badge_schema(id=ENTERPRISE, name="User")
    scim_error(scim.post("/Schemas", json=builtin), 400, "invalidValue")
    scim_error(scim.delete(f"/Schemas/{ENTERPRISE}"), 400, "invalidValue")
    scim_error(scim.delete("/Schemas/urn:sap:cloud:scim:schemas:extension:custom:2.0:Nope"), 404)
    assert scim.post("/Schemas", json=badge_schema()).status_code == 201
    scim_error(scim.post("/Schemas", json=badge_schema()), 409, "uniqueness")
    many = {
        "id": CUSTOM + "2",
        "name": "Badge2",
        "attributes": [{"name": f"a{i}", "type": "string"} for i in range(21)],
    }
    scim_error(scim.post("/Schemas", json=many), 400, "invalidValue")


def test_at_most_twenty_custom_schemas(server: LiveServer) -> None:
    with server.client() as client:
        for i in range(20):
            body = {
                "id": f"urn:sap:cloud:scim:schemas:extension:custom:2.0:S{i}",
                "name": f"S{i}",
                "attributes": [{"name": "a", "type": "string"}],
            }
            assert client.post("/scim/Schemas", json=body).status_code == 201
        body = {
            "id": "urn:sap:cloud:scim:schemas:extension:custom:2.0:S20",
            "name": "S20",
            "attributes": [{"name": "a", "type": "string"}],
        }
        scim_error(client.post("/scim/Schemas", json=body), 400, "invalidValue")


def test_schema_endpoint_only_accepts_post_with_a_schema(scim: httpx.Client) -> None:
    scim_error(scim.post("/Schemas"), 405)
    scim_error(scim.put("/Schemas", json={}), 405)
