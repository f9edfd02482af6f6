"""The rules of outbound certificates (spec §8.1), as pure functions of the certificates, the
system's setting and the time: expiry states, notices, automatic regeneration."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

MAX_OUTBOUND = 2  # per system: one active, one inactive
WARNING_DAYS = 30  # the console warns from 30 days before expiry
RENEWAL_DAYS = 14  # automatic regeneration 14 days before expiry
NOTICE_DAYS = (30, 14, 3)  # expiry notices when automatic regeneration is off


class Expiry(StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"  # within WARNING_DAYS
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"


def expiry(not_before: datetime, not_after: datetime, now: datetime) -> tuple[Expiry, int]:
    """The state of a validity period at ``now`` and the days left, a part of a day counting
    as one (0 or less: expired)."""
    left = not_after - now
    days = math.ceil(left / timedelta(days=1))
    if now < not_before:
        return Expiry.NOT_YET_VALID, days
    if left <= timedelta(0):
        return Expiry.EXPIRED, days
    if left <= timedelta(days=WARNING_DAYS):
        return Expiry.EXPIRING, days
    return Expiry.VALID, days


@dataclass(frozen=True, slots=True)
class Slot:
    """One outbound certificate of a system, as the rules see it."""

    fingerprint: str
    active: bool
    not_after: datetime


@dataclass(frozen=True, slots=True)
class Upkeep:
    """What a system's certificates need now: a new active certificate (``renew``; the
    ``retire``d ones are deleted first), or a notice about the active one."""

    renew: bool = False
    retire: tuple[str, ...] = ()
    notice: str | None = None  # expiring-30, expiring-14, expiring-3, expired


def upkeep(slots: Sequence[Slot], *, auto: bool, now: datetime, noticed: Collection[str]) -> Upkeep:
    """The rules of §8.1 for a system's certificates.

    With automatic regeneration, from RENEWAL_DAYS before the active certificate expires
    (or once it has expired) a new one is generated and made active; the old active one
    stays as the inactive one, and a previous inactive one is deleted to keep the limit of
    two. Without it, a notice at 30, 14 and 3 days before expiry and one at expiry, each
    once (``noticed``: those already given for the active certificate); a late run gives
    only the most urgent notice it missed.
    """
    active = next((slot for slot in slots if slot.active), None)
    if active is None:
        return Upkeep()
    left = active.not_after - now
    if auto:
        if left <= timedelta(days=RENEWAL_DAYS):
            return Upkeep(renew=True, retire=tuple(s.fingerprint for s in slots if not s.active))
        return Upkeep()
    if left <= timedelta(0):
        return Upkeep(notice=None if "expired" in noticed else "expired")
    crossed = [days for days in NOTICE_DAYS if left <= timedelta(days=days)]
    if not crossed:
        return Upkeep()
    urgent = min(crossed)
    if any(f"expiring-{days}" in noticed for days in NOTICE_DAYS if days <= urgent):
        return Upkeep()
    return Upkeep(notice=f"expiring-{urgent}")
