"""The last-moment guard: what must still hold, at the moment of an irreversible act, for the
decision taken at scan time to be carried out. Pure: the executor reads AWS and the ledger at
that moment (:class:`Observed`) and passes the time it read them.

The decision made at scan time is a proposal, never a licence. An endpoint is deleted only if,
read again immediately before ``DeleteEndpoint``:

- it is the same endpoint (same creation time), still ``InService``;
- it was not changed since it was announced (a new configuration, model or capacity after the
  announcement is a sign of work: the announcement no longer names what is there);
- it is not protected now, and its deadline tag is still there and not later than now (a
  person can postpone by editing it; removing it withdraws the deadline; with a grace period
  of 0 no tag is written, the digest of the run that acts is the announcement);
- a delivered digest (one with a message id) announced it, at least the grace period ago;
- it served no more requests than the policy's ``endpoints.max_invocations`` (0 by default:
  none; the same threshold as the idle rule's) over a window that ends now and reaches back to
  the announcement (or ``idle_hours``, whichever is longer): traffic during the grace period
  counts, even when the runs are further apart than ``idle_hours``.

A Studio app is guarded the same way before ``DeleteApp``: its user activity (or, for
Canvas, its activity metric) read again stands for the invocations, and it has no deployment
to change.

Anything unreadable is "no act": the executor never calls this with a missing fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sagesaver.core.formats import iso
from sagesaver.core.grace import SCHEDULED_TAG, parse_tag
from sagesaver.core.records import Announced


class Verdict(Enum):
    """What the guard decided, and what the executor does about it."""

    ACT = "act"
    # The facts changed in a way that keeps the announcement valid: try again later.
    WAIT = "wait"
    # The announcement no longer names what is there (changed, used, withdrawn): it is
    # cancelled, and a new one must reach people before any act.
    CANCEL = "cancel"
    # Not this resource's turn at all (gone, another state, protected).
    KEEP = "keep"


@dataclass(frozen=True)
class Observed:
    """What AWS says of an endpoint at the moment of the act."""

    status: str
    created: datetime
    modified: datetime
    tags: dict[str, str]
    invocations: float  # since :func:`traffic_window_start`, up to ``at``
    at: datetime  # when these were read
    # Use seen another way than by invocations (a Studio app's newer user activity): why.
    used: str = ""


@dataclass(frozen=True)
class Guarded:
    """The guard's verdict and why."""

    verdict: Verdict
    reason: str

    @property
    def act(self) -> bool:
        """True only when everything still holds."""
        return self.verdict is Verdict.ACT


def traffic_window_start(announced: Announced | None, idle_hours: float, now: datetime) -> datetime:
    """Where the traffic read before an act starts: the announcement or ``idle_hours`` ago,
    whichever is earlier."""
    start = now - timedelta(hours=idle_hours)
    return min(start, announced.at) if announced is not None else start


def guard_endpoint(
    expected_created: datetime,
    announced: Announced | None,
    observed: Observed,
    grace_hours: float,
    protected: bool,
    noun: str = "endpoint",
    max_invocations: float = 0,
) -> Guarded:
    """The verdict on deleting an endpoint (or another resource of that name, ``noun``) now
    (module docstring)."""
    if observed.created != expected_created:
        return Guarded(Verdict.KEEP, f"another {noun} has its name now")
    if observed.status != "InService":
        return Guarded(Verdict.KEEP, f"state is now {observed.status}")
    if protected:
        return Guarded(Verdict.KEEP, "protected by tag since the scan")
    if announced is None or not announced.delivered:
        return Guarded(Verdict.CANCEL, "no delivered digest announced it")
    if observed.modified > announced.at:
        return Guarded(
            Verdict.CANCEL,
            f"changed at {iso(observed.modified)}, after it was announced ({iso(announced.at)})",
        )
    tag = parse_tag(observed.tags.get(SCHEDULED_TAG, ""))
    if tag is None and announced.deadline > announced.at:  # a tag was written: withdrawn
        return Guarded(Verdict.CANCEL, f"its {SCHEDULED_TAG} tag was removed or is unreadable")
    deadline = announced.deadline if tag is None else max(tag[1], announced.deadline)
    if deadline > observed.at:
        return Guarded(Verdict.WAIT, f"postponed to {iso(deadline)}")
    if announced.at + timedelta(hours=grace_hours) > observed.at:
        return Guarded(
            Verdict.WAIT, f"announced at {iso(announced.at)}, less than {grace_hours:g} h ago"
        )
    if observed.used:
        return Guarded(Verdict.CANCEL, f"used again: {observed.used}")
    at_most = f" (at most {max_invocations:g} counts as idle)" if max_invocations else ""
    if observed.invocations > max_invocations:
        return Guarded(
            Verdict.CANCEL,
            f"active again: {observed.invocations:g} invocations since {iso(announced.at)} "
            f"or within its idle window{at_most}",
        )
    if observed.invocations > 0:
        return Guarded(
            Verdict.ACT,
            f"still idle ({observed.invocations:g} invocations{at_most}), unchanged and announced",
        )
    return Guarded(Verdict.ACT, "still idle, unchanged and announced")
