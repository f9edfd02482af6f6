"""A target that fails mid-page (its credentials refused: the job stops writing to it): the
writes of that page it never sent are neither counted nor logged nor recorded as written, so
the next job sends them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provisor.jobs.model import Action, JobStatus
from provisor.runtime import Services
from provisor.types import EntityType
from tests.helpers import patch
from tests.jobs.conftest import CTX, add_users, lid_source, run_job, stats, system
from tests.security.test_exactly_once import _PlainSCIM, serving_scim

USERS = 30
ANSWERED = 5  # writes the target takes before it refuses the credentials


class _Refusing(_PlainSCIM):
    """Takes ``budget`` writes (None: any number), then answers 401 to each."""

    budget: int | None = None

    def _refused(self) -> bool:
        with self.lock:
            kind = type(self)
            if kind.budget is None:
                return False
            if kind.budget == 0:
                return True
            kind.budget -= 1
            return False

    def do_POST(self) -> None:
        if self._refused():
            self._answer(401, {"status": "401", "detail": "invalid credentials"})
            return
        super().do_POST()

    def do_PUT(self) -> None:
        if self._refused():
            self._answer(401, {"status": "401", "detail": "invalid credentials"})
            return
        super().do_PUT()


@pytest.fixture
def refusing() -> Iterator[str]:
    _Refusing.budget = None
    with serving_scim(_Refusing) as url:
        yield url


def test_writes_a_failed_target_never_got_are_sent_by_the_next_job(
    sqlite_services: Services, refusing: str
) -> None:
    services = sqlite_services
    ids = add_users(services, *(f"user{i:02d}" for i in range(USERS)))
    source = lid_source(services, **{"idds.page.size": "10"})
    system(
        services,
        name="Refusing",
        type="scim",
        role="target",
        sourceSystemIds=[source.id],
        properties={
            "URL": refusing,
            "Authentication": "NoAuthentication",
            "ips.write.concurrency": "1",  # in order: the 6th write is the first refused
        },
    )
    _Refusing.budget = ANSWERED
    first = run_job(services, "LID")

    assert first.status is JobStatus.FINISHED_WITH_ERROR
    assert stats(first, "Refusing") == {**stats(first, "Refusing"), "created": 5, "failed": 1}
    assert len(_Refusing.users) == ANSWERED
    logged = services.jobs.entity_logs(CTX, first.id, [Action.CREATED.value])[1]
    assert logged == ANSWERED  # the page's other creates were never sent

    _Refusing.budget = None
    second = run_job(services, "LID")
    assert second.status is JobStatus.SUCCESS
    assert stats(second, "Refusing")["created"] == USERS - ANSWERED
    assert len(_Refusing.users) == USERS

    for user_id in ids.values():
        change = {"op": "replace", "path": "displayName", "value": "Renamed"}
        services.directory.patch(CTX, EntityType.USER, user_id, patch(change), "/scim")
    _Refusing.budget = ANSWERED
    third = run_job(services, "LID")
    assert third.status is JobStatus.FINISHED_WITH_ERROR
    assert stats(third, "Refusing") == {**stats(third, "Refusing"), "updated": 5, "failed": 1}

    _Refusing.budget = None
    fourth = run_job(services, "LID")  # the updates never sent are sent now, not "unchanged"
    assert fourth.status is JobStatus.SUCCESS
    assert stats(fourth, "Refusing")["updated"] == USERS - ANSWERED
    names = [user.get("displayName") for user in _Refusing.users.values()]
    assert names == ["Renamed"] * USERS
