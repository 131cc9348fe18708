"""The kinds SageSaver acts on, as the unit of extension: one registered :class:`ActingKind`
each, owning what the executor, recovery, the digest and the permissions need of it.

- ``rules``: whether the policy acts on it, its grace period and how many a run may act on;
- ``act``: acting on one due resource, the last-moment guard included (:mod:`.acts`); a kind
  whose act needs what its own inventory found (Studio apps) gives ``None`` here and builds its
  lane from :meth:`ActingKind.lane`;
- ``resolve``: what a later run does with a lease its run left open (:mod:`.recovery`);
- ``would`` and ``note``: what the dry run and the digest say will happen first;
- ``capability`` and ``call``: the IAM capability that grants its irreversible call.

``enforce``, recovery and the permissions test loop over :data:`ACTING`: a kind is added here,
with all of these, or it does not act (the executor refuses a lane of a kind not registered).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sagesaver.core.model import Kind
from sagesaver.core.policy import Policy
from sagesaver.ledger import Ledger
from sagesaver.pipelines.acts import Act, act_on_endpoint, act_on_warm_pool
from sagesaver.pipelines.recovery import (
    Resolve,
    resolve_endpoint,
    resolve_studio_app,
    resolve_warm_pool,
)

# (acts under this policy, grace hours, most acts per run)
Rules = Callable[[Policy], tuple[bool, float, int]]


@dataclass(frozen=True)
class ActingKind:
    """Everything about one kind that SageSaver acts on (module docstring)."""

    kind: Kind
    verb: str  # the irreversible action, as the ledger and the digest name it
    call: str  # the API call that does it
    capability: str  # the IAM capability (core.permissions) granting it
    rules: Rules
    act: Act | None
    resolve: Resolve
    would: str
    note: Callable[[Ledger | None], str]

    def lane(self, policy: Policy, act: Act | None = None) -> Lane:
        """This kind under ``policy``, acted on by ``act`` (default: its own)."""
        _, grace_hours, most = self.rules(policy)
        chosen = act or self.act
        if chosen is None:
            raise ValueError(f"{self.kind.value}: its act needs its inventory: pass it")
        return Lane(self.kind, grace_hours, most, chosen, self.would)


@dataclass(frozen=True)
class Lane:
    """One kind of resource under enforcement in a run: its grace period, how many the run may
    act on, how one is acted on, and what the dry run says would happen first."""

    kind: Kind
    grace_hours: float
    max_actions: int
    act: Act
    would: str

    def __post_init__(self) -> None:
        if self.kind not in ACTING:  # every kind that acts is registered, so recoverable
            raise ValueError(f"{self.kind.value}: no recovery for a kind that acts")


def _after_backup(ledger: Ledger | None) -> str:
    return " and a backup kept in " + ledger.location if ledger is not None else ""


ACTING: dict[Kind, ActingKind] = {
    spec.kind: spec
    for spec in (
        ActingKind(
            Kind.ENDPOINT,
            "delete",
            "sagemaker:DeleteEndpoint",
            "enforce",
            lambda p: (
                p.endpoints.action == "delete",
                p.endpoints.grace_hours,
                p.endpoints.max_actions_per_run,
            ),
            act_on_endpoint,
            resolve_endpoint,
            "after a fresh check and a backup",
            _after_backup,
        ),
        ActingKind(
            Kind.STUDIO_APP,
            "delete",
            "sagemaker:DeleteApp",
            "studio",
            lambda p: (
                p.studio_apps.action == "delete",
                p.studio_apps.grace_hours,
                p.studio_apps.max_actions_per_run,
            ),
            None,  # its act needs the apps its inventory found (pipelines/studio.py)
            resolve_studio_app,
            "after a fresh check; space storage kept",
            lambda ledger: "",
        ),
        ActingKind(
            Kind.TRAINING_JOB,
            "release",
            "sagemaker:UpdateTrainingJob",
            "release-warm-pools",
            # no grace tag: a pool lives at most 6 hours; the digest sent before the act
            # announces it
            lambda p: (
                p.jobs.enabled and p.jobs.warm_pools.action == "release",
                0.0,
                p.jobs.warm_pools.max_actions_per_run,
            ),
            act_on_warm_pool,
            resolve_warm_pool,
            "after a fresh check that it is still Available",
            lambda ledger: "",
        ),
    )
}


def run_lanes(policy: Policy) -> list[Lane]:
    """The kinds a scan-and-act run acts on under ``policy`` (none: it only reports). Studio
    apps have their own command, which builds their lane with its inventory."""
    return [
        spec.lane(policy)
        for spec in ACTING.values()
        if spec.act is not None and spec.rules(policy)[0]
    ]


def acting_problem(
    policy: Policy,
    apply: bool,
    ledger: str | None,
    ledger_setting: str = "--ledger",
    apply_setting: str = "--apply",
) -> str | None:
    """Why a run under ``policy`` with ``apply`` cannot go ahead, or None. Every entry point
    (the CLI, the Lambda functions, the organisation stack) asks this one question before it
    scans: a run that applies tells people first, so it needs ``notify.sns_topic_arn`` or
    ``notify.channels``; one that acts (deletes, releases) also needs a ledger (``ledger``:
    its location, None when unset) for its intents and backups."""
    if not apply:
        return None
    acting = [
        what
        for what, on in (
            ("endpoints.action 'delete'", policy.endpoints.action == "delete"),
            ("jobs.warm_pools.action 'release'", policy.jobs.warm_pools.action == "release"),
            ("studio_apps.action 'delete'", policy.studio_apps.action == "delete"),
        )
        if on
    ]
    doing = " and ".join(acting) or f"action '{policy.endpoints.action}'"
    if acting and ledger is None:
        return f"{doing} needs {ledger_setting} (e.g. dynamodb://TABLE)"
    if not policy.notify.can_announce:
        return (
            f"{apply_setting} with {doing} needs notify.sns_topic_arn or notify.channels in the "
            "policy (people are told before anything is deleted)"
        )
    return None
