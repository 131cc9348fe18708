"""The guards SageSaver's code applies before it acts, written as explicit IAM ``Deny``
statements (``sagesaver permissions`` and the stack's roles): each one refuses, in IAM, what
the code already refuses, and lets the same act on an ordinary selected resource through.

Each decision is made by a small IAM evaluator (``tests/iam_evaluator.py``) on the ARN AWS
would check: built from parliament's copy of AWS's ARN formats, with the name in lower case,
as SageMaker writes it in its ARNs. What the code refuses is asked of the code itself
(``Selection.is_protected`` and ``selects``, the schedules' ``is_protected``,
``plan_attach``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import parliament
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagesaver.aws.endpoints import BACKUP_TAG, DELETED_ENDPOINT_TAG
from sagesaver.core.grace import SCHEDULED_TAG
from sagesaver.core.lifecycle import plan_attach
from sagesaver.core.model import Kind, Resource
from sagesaver.core.permissions import (
    CAPABILITIES,
    GUARDED,
    capability_documents,
    left_to_code,
    scoped_document,
)
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.core.rules import schedules as schedule_rules
from sagesaver.pipelines.acts import CLAIM_TAG
from tests.iam_evaluator import Request, decide, denying_sids

ACCOUNT = "123456789012"
REGION = "us-east-1"
# A protect tag of the policy's own, and excludes of every shape (a [...] glob IAM cannot say).
POLICY_TEXT = """
endpoints: {action: delete, protect_tag: "team:keep", exclude: ["prod-*", "Shared", "tmp-??", "x[ab]"]}
studio_apps: {action: delete, protect_tag: "studio:keep", exclude: ["prod-*", "Shared", "tmp-??", "x[ab]"]}
jobs: {warm_pools: {action: release, protect_tag: "jobs:keep", exclude: ["prod-*", "Shared", "tmp-??", "x[ab]"]}}
notebooks: {protect_tag: "nb:keep"}
schedule_protect_tag: "sched:keep"
"""  # noqa: E501
POLICY = parse_policy(POLICY_TEXT, "guards")
NAMES = ["ordinary", "prod-1", "prod", "shared", "Shared", "tmp-ab", "tmp-abc", "xa", "xc"]
# Protect tag values: those that protect, those that do not (false/no/0/off, any case).
VALUES = ["true", "yes", "1", "keep", "", "on", "false", "False", "NO", "0", "off", "OFF"]
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

DEFINITIONS = json.loads(
    (Path(parliament.__file__).parent / "iam_definition.json").read_text(encoding="utf-8")
)
SAGEMAKER = next(s for s in DEFINITIONS if s["prefix"] == "sagemaker")


def arn_of(resource_type: str, **parts: str) -> str:
    """The ARN AWS checks for ``resource_type``, from AWS's format (parliament's copy)."""
    [found] = [r for r in SAGEMAKER["resources"] if r["resource"] == resource_type]
    arn = str(found["arn"])
    for name, value in {"Partition": "aws", "Region": REGION, "Account": ACCOUNT, **parts}.items():
        arn = arn.replace("${" + name + "}", value)
    assert "${" not in arn, arn
    return arn


def notebook(name: str, tags: dict[str, str], status: str = "Stopped") -> Resource:
    return Resource(
        kind=Kind.NOTEBOOK,
        name=name,
        arn=arn_of("notebook-instance", NotebookInstanceName=name.lower()),
        region=REGION,
        account=ACCOUNT,
        status=status,
        created=NOW,
        modified=NOW,
        tags=tags,
    )


@dataclass(frozen=True)
class Guarded:
    """One capability's guarded act: the ARN of a resource named ``name`` and whether the
    code refuses to act on it with ``tags``."""

    capability: str
    action: str
    arn: Callable[[str], str]
    refuses: Callable[[Policy, str, dict[str, str]], bool]


def _refused_by_selection(kind: Callable[[Policy], Any]) -> Callable[..., bool]:
    def refuses(policy: Policy, name: str, tags: dict[str, str]) -> bool:
        selection = kind(policy)
        return selection.is_protected(tags) or not selection.selects(name, tags)[0]

    return refuses


def _refused_by_schedules(policy: Policy, name: str, tags: dict[str, str]) -> bool:
    return schedule_rules.is_protected(notebook(name, tags), policy.schedule_protect_tag)


def _refused_by_lifecycle(policy: Policy, name: str, tags: dict[str, str]) -> bool:
    [planned] = plan_attach(
        [notebook(name, tags)], [name], {}, "sagesaver-autostop", True, policy.notebooks.protect_tag
    )
    return planned.action == "skip"


def _endpoint(name: str) -> str:
    return arn_of("endpoint", EndpointName=name.lower())


def _app(name: str) -> str:
    parts = {"DomainId": "d-abc123def456", "AppType": "jupyterlab", "AppName": "default"}
    return arn_of("app", UserProfileName=name.lower(), **parts)


def _job(name: str) -> str:
    return arn_of("training-job", TrainingJobName=name.lower())


def _notebook(name: str) -> str:
    return arn_of("notebook-instance", NotebookInstanceName=name.lower())


ENDPOINTS = _refused_by_selection(lambda p: p.endpoints)
STUDIO_APPS = _refused_by_selection(lambda p: p.studio_apps)
WARM_POOLS = _refused_by_selection(lambda p: p.jobs.warm_pools)
GUARDS = [
    Guarded("enforce", "sagemaker:DeleteEndpoint", _endpoint, ENDPOINTS),
    Guarded("studio", "sagemaker:DeleteApp", _app, STUDIO_APPS),
    Guarded("release-warm-pools", "sagemaker:UpdateTrainingJob", _job, WARM_POOLS),
    Guarded("schedule", "sagemaker:StartNotebookInstance", _notebook, _refused_by_schedules),
    Guarded("schedule", "sagemaker:StopNotebookInstance", _notebook, _refused_by_schedules),
    Guarded("lifecycle", "sagemaker:UpdateNotebookInstance", _notebook, _refused_by_lifecycle),
    Guarded("lifecycle", "sagemaker:StopNotebookInstance", _notebook, _refused_by_lifecycle),
    Guarded("lifecycle", "sagemaker:StartNotebookInstance", _notebook, _refused_by_lifecycle),
]
IDS = [f"{g.capability}-{g.action.split(':')[1]}" for g in GUARDS]


def documents(guard: Guarded, policy: Policy = POLICY) -> list[dict[str, Any]]:
    """The capability's own policy and the union of every capability."""
    options: dict[str, Any] = {
        "regions": [REGION],
        "account": ACCOUNT,
        "policy": policy,
        "delete_config": True,
        "pass_roles": [f"arn:aws:iam::{ACCOUNT}:role/models/model"],
    }
    own = capability_documents([guard.capability], **options)[guard.capability]
    return [own, scoped_document(list(CAPABILITIES), **options)]


def protect_key(guard: Guarded, policy: Policy = POLICY) -> str:
    return GUARDED[guard.capability].protect_tag(policy)


# --- the evaluator ----------------------------------------------------------------------------


def test_the_evaluator_reads_iam_as_aws_does() -> None:
    allow = {"Effect": "Allow", "Action": "sagemaker:Delete*", "Resource": "arn:aws:x:*"}
    deny = {
        "Effect": "Deny",
        "Action": "sagemaker:deleteendpoint",  # actions: any case
        "Resource": "arn:aws:x:e?",
        "Condition": {"StringNotEqualsIgnoreCase": {"aws:ResourceTag/k": ["false"]}},
    }
    doc = {"Statement": [allow, deny]}
    assert decide(doc, Request.on("sagemaker:DeleteEndpoint", "arn:aws:x:e1")) == "deny"  # no tag
    tagged = Request.on("sagemaker:DeleteEndpoint", "arn:aws:x:e1", {"k": "FALSE"})
    assert decide(doc, tagged) == "allow"
    assert decide(doc, Request.on("sagemaker:DeleteEndpoint", "arn:aws:x:e12")) == "allow"
    assert decide(doc, Request.on("sagemaker:StopNotebookInstance", "arn:aws:x:e1")) == (
        "implicit-deny"
    )
    null = {"Statement": [dict(allow, Condition={"Null": {"aws:ResourceTag/k": "false"}})]}
    assert decide(null, Request.on("sagemaker:DeleteApp", "arn:aws:x:a")) == "implicit-deny"
    assert decide(null, Request.on("sagemaker:DeleteApp", "arn:aws:x:a", {"k": ""})) == "allow"
    keys = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["p"]}}
    anyof = {"Statement": [dict(allow, Action="sagemaker:DeleteTags", Condition=keys)]}
    both = Request.on("sagemaker:DeleteTags", "arn:aws:x:a", aws__TagKeys=["q", "p"])
    assert decide(anyof, both) == "allow"
    assert decide(anyof, Request.on("sagemaker:DeleteTags", "arn:aws:x:a")) == "implicit-deny"
    unknown = {"Statement": [dict(allow, Condition={"DateGreaterThan": {"aws:CurrentTime": "x"}})]}
    with pytest.raises(ValueError):  # never taken as matching
        decide(unknown, Request.on("sagemaker:DeleteApp", "arn:aws:x:a"))


def test_arns_are_built_as_aws_writes_them() -> None:
    assert _endpoint("Prod-1") == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/prod-1"
    assert _app("alice") == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:app/d-abc123def456/alice/jupyterlab/default"
    )


# --- the protect tag --------------------------------------------------------------------------


@pytest.mark.parametrize("guard", GUARDS, ids=IDS)
def test_acting_on_a_protected_resource_is_denied_as_the_code_refuses_it(guard: Guarded) -> None:
    key = protect_key(guard)
    for document in documents(guard):
        ordinary = Request.on(guard.action, guard.arn("ordinary"))
        assert not guard.refuses(POLICY, "ordinary", {})
        assert decide(document, ordinary) == "allow"
        for value in VALUES:
            request = Request.on(guard.action, guard.arn("ordinary"), {key: value})
            refused = guard.refuses(POLICY, "ordinary", {key: value})
            assert (decide(document, request) == "deny") == refused, (value, refused)
        # Another kind's protect tag is not this one's.
        other = Request.on(guard.action, guard.arn("ordinary"), {"sagesaver:protect": "true"})
        assert decide(document, other) == "allow"


@settings(max_examples=150, deadline=None)
@given(value=st.text(max_size=12))
def test_any_protect_value_the_code_refuses_is_denied(value: str) -> None:
    """The code strips spaces, IAM cannot: IAM refuses more (`` false``), never less."""
    for guard in GUARDS:
        key = protect_key(guard)
        [own, _] = documents(guard)
        denied = (
            decide(own, Request.on(guard.action, guard.arn("ordinary"), {key: value})) == "deny"
        )
        refused = guard.refuses(POLICY, "ordinary", {key: value})
        assert denied if refused else (not denied or value != value.strip()), (guard, value)


# --- exclude ----------------------------------------------------------------------------------


EXCLUDING = [(g, i) for g, i in zip(GUARDS, IDS, strict=True) if GUARDED[g.capability].excludes]


@pytest.mark.parametrize("guard", [g for g, _ in EXCLUDING], ids=[i for _, i in EXCLUDING])
def test_acting_on_an_excluded_name_is_denied_as_the_code_refuses_it(guard: Guarded) -> None:
    left = left_to_code([guard.capability], POLICY)
    for document in documents(guard):
        for name in NAMES:
            refused = guard.refuses(POLICY, name, {})
            decision = decide(document, Request.on(guard.action, guard.arn(name)))
            if name == "xa":  # only "x[ab]" excludes it: IAM has no [...], the code refuses
                assert refused and decision == "allow"
                assert any("'x[ab]'" in line for line in left)
            elif name == "shared":  # "Shared": AWS's ARN is lower case, so IAM refuses both
                assert not refused and decision == "deny"
            else:
                assert (decision == "deny") == refused, (name, decision)
                if refused:
                    assert denying_sids(document, Request.on(guard.action, guard.arn(name)))


def test_notebooks_exclude_is_no_guard_of_any_act() -> None:
    """notebooks.exclude narrows the scan's report; schedules and lifecycle install do not
    read it, so no Deny claims it."""
    policy = parse_policy('notebooks: {exclude: ["dev-*"]}', "n")
    for capability in ("schedule", "lifecycle"):
        assert GUARDED[capability].excludes is None
        doc = scoped_document([capability], [REGION], ACCOUNT, policy=policy)
        assert not [s for s in doc["Statement"] if s["Sid"].startswith("DenyExcluded")]
        assert not _refused_by_lifecycle(policy, "dev-1", {})
        assert any("notebooks.exclude" in line for line in left_to_code([capability], policy))


# --- the protect tag itself -------------------------------------------------------------------


OWN_TAGS = [SCHEDULED_TAG, CLAIM_TAG, DELETED_ENDPOINT_TAG, BACKUP_TAG]


@pytest.mark.parametrize("capability", ["enforce", "studio"])
def test_the_protect_tag_cannot_be_removed_or_overwritten(capability: str) -> None:
    doc = scoped_document([capability], [REGION], ACCOUNT, policy=POLICY)
    arn = _endpoint("ordinary") if capability == "enforce" else _app("ordinary")
    keys = {spec.protect_tag(POLICY) for spec in GUARDED.values()}
    assert keys == {"team:keep", "studio:keep", "jobs:keep", "nb:keep", "sched:keep"}
    for action in ("sagemaker:AddTags", "sagemaker:DeleteTags"):
        for key in keys:
            request = Request.on(action, arn, aws__TagKeys=[SCHEDULED_TAG, key])
            assert denying_sids(doc, request) == ["DenyProtectTagChanges"]
        # The tags SageSaver writes and removes itself stay allowed.
        assert OWN_TAGS and not keys & set(OWN_TAGS)
        for own in OWN_TAGS:
            assert decide(doc, Request.on(action, arn, aws__TagKeys=[own])) == "allow", own


def test_restore_may_recreate_a_backups_tags_but_nobody_removes_the_protect_tag() -> None:
    """restore creates the endpoint with its backup's tags (AddTags), which may name the
    protect tag: AddTags is not denied where restore is granted; DeleteTags is."""
    union = scoped_document(list(CAPABILITIES), [REGION], ACCOUNT, policy=POLICY)
    arn = _endpoint("ordinary")
    add = Request.on("sagemaker:AddTags", arn, aws__TagKeys=["team:keep"])
    remove = Request.on("sagemaker:DeleteTags", arn, aws__TagKeys=["team:keep"])
    assert decide(union, add) == "allow" and decide(union, remove) == "deny"
    assert decide(scoped_document(["restore"], [REGION], ACCOUNT, policy=POLICY), add) == "allow"


# --- what IAM supports ------------------------------------------------------------------------


def supported_keys(action: str) -> set[str]:
    """The condition keys AWS lists for ``action``: its own and its resource types'."""
    [privilege] = [p for p in SAGEMAKER["privileges"] if f"sagemaker:{p['privilege']}" == action]
    types = {r["resource_type"].rstrip("*") for r in privilege["resource_types"]}
    keys = {k for r in privilege["resource_types"] for k in r["condition_keys"]}
    keys |= {
        k for r in SAGEMAKER["resources"] if r["resource"] in types for k in r["condition_keys"]
    }
    return {k.replace("${TagKey}", "").lower() for k in keys}


def test_every_deny_uses_condition_keys_its_actions_support() -> None:
    docs = capability_documents(list(CAPABILITIES), regions=[REGION], policy=POLICY)
    denies = [s for d in docs.values() for s in d["Statement"] if s["Effect"] == "Deny"]
    assert {s["Sid"] for s in denies} == {
        "DenyProtectedEndpoints",
        "DenyExcludedEndpoints",
        "DenyProtectedStudioApps",
        "DenyExcludedStudioApps",
        "DenyProtectedWarmPools",
        "DenyExcludedWarmPools",
        "DenyProtectedScheduledNotebooks",
        "DenyProtectedNotebooksAttached",
        "DenyProtectTagChanges",
    }
    for statement in denies:
        for keys in statement.get("Condition", {}).values():
            for key in keys:
                stem = key.lower().split("/")[0] + ("/" if "/" in key else "")
                for action in statement["Action"]:
                    assert stem in supported_keys(action), (statement["Sid"], action, key)
    # DeleteApp: aws:ResourceTag is supported through its resource type, app.
    assert "aws:resourcetag/" in supported_keys("sagemaker:DeleteApp")


def test_what_iam_cannot_hold_is_said_and_left_to_the_code() -> None:
    lines = left_to_code(list(CAPABILITIES), POLICY)
    assert sum("'x[ab]'" in line for line in lines) == 3  # endpoints, Studio apps, warm pools
    kept = left_to_code(["enforce"], parse_policy("endpoints: {action: delete}", "k"))
    deleting = parse_policy("endpoints: {action: delete, delete_config: true}", "d")
    assert kept == [] and any(
        "DeleteEndpointConfig" in line for line in left_to_code(["enforce"], deleting)
    )
