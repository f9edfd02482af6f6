"""SAP's job notification rules (spec §3.10, §2.3 ``ips.job.notification.*``), pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from provisor.jobs.model import JobStatus

REPEAT = "ips.job.notification.repeat.on.failure"
IGNORED = "ips.job.notification.ignored.consecutive.failures"
SKIP_INTERMEDIATE = "ips.job.notification.skip.intermediate.notifications"

RUNNING_WITH_ERROR = "job.running_with_error"
FINISHED_WITH_ERROR = "job.finished_with_error"
SUCCESS = "job.success"
SUBJECTS = {
    RUNNING_WITH_ERROR: "Provisioning Running with Error. Source System: {name}",
    FINISHED_WITH_ERROR: "Provisioning Finished with Error. Source System: {name}",
    SUCCESS: "Provisioning Success. Source System: {name}",
}


@dataclass(frozen=True, slots=True)
class JobRules:
    """A source system's notification properties."""

    repeat_on_failure: bool = False
    ignored_failures: int = 0
    skip_intermediate: bool = False

    @classmethod
    def of(cls, properties: Mapping[str, str]) -> JobRules:
        def flag(key: str) -> bool:
            return (properties.get(key) or "").strip().lower() == "true"

        try:
            ignored = max(0, int((properties.get(IGNORED) or "0").strip()))
        except ValueError:
            ignored = 0
        return cls(flag(REPEAT), ignored, flag(SKIP_INTERMEDIATE))


@dataclass(frozen=True, slots=True)
class Streak:
    """A source's run of failed jobs: how many in a row, and whether one was notified."""

    failures: int = 0
    notified: bool = False


def decide(rules: JobRules, streak: Streak, status: JobStatus) -> tuple[str | None, Streak]:
    """The message a job reaching ``status`` sends (None: none) and the source's streak
    after it.

    - *Running with Error*: once per job, at its first failed entity (the caller calls this
      on the change of status), unless ``skip.intermediate.notifications``.
    - *Finished with Error*: on every failed job with ``repeat.on.failure``; otherwise only
      for the first failed job after a success, the first ``ignored.consecutive.failures``
      failures in a row not notified (the next one is).
    - *Success*: only after a failed job whose failure was notified (subscribers who were
      told nothing went wrong are not told it is fine again).
    Manually terminated and restarted jobs change nothing.
    """
    if status is JobStatus.RUNNING_WITH_ERROR:
        return (None if rules.skip_intermediate else RUNNING_WITH_ERROR), streak
    if status is JobStatus.FINISHED_WITH_ERROR:
        failures = streak.failures + 1
        send = rules.repeat_on_failure or failures == rules.ignored_failures + 1
        return (FINISHED_WITH_ERROR if send else None), Streak(failures, streak.notified or send)
    if status is JobStatus.SUCCESS:
        return (SUCCESS if streak.failures and streak.notified else None), Streak()
    return None, streak
