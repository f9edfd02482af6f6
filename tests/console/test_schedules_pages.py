"""The schedules pages: listing, creating, changing, turning off and deleting a source's
schedule; bad input re-renders the form; a viewer changes nothing."""

from __future__ import annotations

from provisor.admins.model import Role
from provisor.context import Context
from provisor.errors import NotFoundError
from tests.console.conftest import Console, csrf_of
from tests.jobs.conftest import lid_source

CTX = Context.system("tests")


def test_create_change_disable_delete(console: Console) -> None:
    source = lid_source(console.services)
    browser = console.signed_in("ada")
    listing = browser.get("/console/schedules")
    assert listing.status_code == 200
    assert "LID" in listing.text and "none" in listing.text
    form = browser.get(f"/console/schedules/{source.id}")
    assert 'id="schedule-form"' in form.text
    token = csrf_of(form)
    saved = browser.post(
        f"/console/schedules/{source.id}",
        data={"csrf": token, "enabled": "1", "kind": "interval", "interval": "45"},
    )
    assert saved.status_code == 303, saved.text
    assert console.services.schedules.get(CTX, source.id).schedule.to_dict() == {
        "enabled": True,
        "intervalMinutes": 45,
    }
    weekly = browser.post(
        f"/console/schedules/{source.id}",
        data={
            "csrf": token,
            "enabled": "1",
            "kind": "weekly",
            "days": ["MON", "FRI"],
            "time": "02:30",
            "zone": "Europe/Berlin",
        },
    )
    assert weekly.status_code == 303
    rule = console.services.schedules.get(CTX, source.id).schedule.to_dict()
    assert rule["daysOfWeek"] == ["MON", "FRI"] and rule["timeZone"] == "Europe/Berlin"
    assert "every" not in browser.get("/console/schedules").text.split("<tbody>")[1]
    off = browser.post(f"/console/schedules/{source.id}/disable", data={"csrf": token})
    assert off.status_code == 303
    assert not console.services.schedules.get(CTX, source.id).schedule.enabled
    gone = browser.post(f"/console/schedules/{source.id}/delete", data={"csrf": token})
    assert gone.status_code == 303
    try:
        console.services.schedules.get(CTX, source.id)
        raise AssertionError("the schedule was not deleted")
    except NotFoundError:
        pass
    again = browser.post(f"/console/schedules/{source.id}/delete", data={"csrf": token})
    assert again.status_code == 404


def test_bad_schedules_are_explained_with_the_values_typed(console: Console) -> None:
    source = lid_source(console.services)
    browser = console.signed_in("ada")
    token = csrf_of(browser.get(f"/console/schedules/{source.id}"))
    short = browser.post(
        f"/console/schedules/{source.id}",
        data={"csrf": token, "kind": "interval", "interval": "10"},
    )
    assert short.status_code == 400
    assert 'id="schedule-error"' in short.text
    assert 'value="10"' in short.text
    words = browser.post(
        f"/console/schedules/{source.id}",
        data={"csrf": token, "kind": "interval", "interval": "soon"},
    )
    assert words.status_code == 400
    assert "number of minutes" in words.text
    zone = browser.post(
        f"/console/schedules/{source.id}",
        data={"csrf": token, "kind": "weekly", "days": "MON", "time": "02:00", "zone": "Mars/Base"},
    )
    assert zone.status_code == 400
    assert 'value="Mars/Base"' in zone.text
    assert browser.get("/console/schedules/no-such-system").status_code == 404


def test_a_viewer_sees_schedules_and_changes_none(console: Console) -> None:
    source = lid_source(console.services)
    console.services.schedules.put(CTX, source.id, {"intervalMinutes": 60})
    viewer = console.signed_in("vic", Role.VIEWER)
    page = viewer.get(f"/console/schedules/{source.id}")
    assert page.status_code == 200
    assert 'id="schedule-form"' not in page.text
    token = csrf_of(page)
    for path in ("", "/disable", "/delete"):
        refused = viewer.post(
            f"/console/schedules/{source.id}{path}",
            data={"csrf": token, "kind": "interval", "interval": "90"},
        )
        assert refused.status_code == 403, path
    assert console.services.schedules.get(CTX, source.id).schedule.to_dict() == {
        "enabled": True,
        "intervalMinutes": 60,
    }
