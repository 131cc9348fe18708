"""The stack's roles carry the same guards as ``sagesaver permissions``: explicit ``Deny``
statements on acting on what the code refuses (the protect tag, ``exclude``) and on changing
the protect tag, each checked on the role's policy as IAM would decide it, with the
template's intrinsics resolved in one account and region."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagesaver.core.permissions import GUARDED
from sagesaver.core.policy import parse_policy
from sagesaver.deploy.template import IDLE_SCAN, SCHEDULE_TICK, render_template
from tests.core.test_permission_guards import (
    ACCOUNT,
    GUARDS,
    IDS,
    NAMES,
    POLICY_TEXT,
    REGION,
    VALUES,
    Guarded,
    protect_key,
)
from tests.deploy.test_hardening import SCHEDULED as SCHEDULES
from tests.iam_evaluator import Request, decide

POLICY = parse_policy(POLICY_TEXT + SCHEDULES, "stack-guards")
# The roles that hold each capability in the stack (lifecycle is not the stack's; studio is,
# with studio_apps.action: delete, as POLICY_TEXT has it).
ROLE_OF = {
    "enforce": IDLE_SCAN,
    "release-warm-pools": IDLE_SCAN,
    "schedule": SCHEDULE_TICK,
    "studio": IDLE_SCAN,
}
STACK_GUARDS = [(g, i) for g, i in zip(GUARDS, IDS, strict=True) if g.capability in ROLE_OF]


def _resolved(value: Any) -> Any:
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            text = str(value["Fn::Sub"])
            for name, concrete in {
                "${AWS::Partition}": "aws",
                "${AWS::Region}": REGION,
                "${AWS::AccountId}": ACCOUNT,
            }.items():
                text = text.replace(name, concrete)
            return text
        if "Ref" in value or "Fn::GetAtt" in value:
            return f"arn:aws:other:{REGION}:{ACCOUNT}:{json.dumps(value, sort_keys=True)}"
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


def role_document(function: str) -> dict[str, Any]:
    template = render_template(POLICY, "sagesaver-code", "sagesaver.zip", ["ops@example.com"])
    role = template["Resources"][f"{function}Role"]
    [inline] = role["Properties"]["Policies"]
    return dict(_resolved(inline["PolicyDocument"]))


@pytest.mark.parametrize(("guard", "name"), STACK_GUARDS, ids=[i for _, i in STACK_GUARDS])
def test_the_roles_refuse_what_the_code_refuses(guard: Guarded, name: str) -> None:
    document = role_document(ROLE_OF[guard.capability])
    key = protect_key(guard, POLICY)
    assert decide(document, Request.on(guard.action, guard.arn("ordinary"))) == "allow"
    for value in VALUES:
        request = Request.on(guard.action, guard.arn("ordinary"), {key: value})
        refused = guard.refuses(POLICY, "ordinary", {key: value})
        assert (decide(document, request) == "deny") == refused, value
    if GUARDED[guard.capability].excludes is None:
        return
    for resource_name in NAMES:
        refused = guard.refuses(POLICY, resource_name, {})
        denied = decide(document, Request.on(guard.action, guard.arn(resource_name))) == "deny"
        if resource_name == "xa":  # "x[ab]": left to the code
            assert refused and not denied
        elif resource_name == "shared":  # "Shared" as AWS's lower-case ARN
            assert denied and not refused
        else:
            assert denied == refused, resource_name


def test_the_scan_role_cannot_remove_or_overwrite_the_protect_tag() -> None:
    document = role_document(IDLE_SCAN)
    endpoint = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/ordinary"
    for action in ("sagemaker:AddTags", "sagemaker:DeleteTags"):
        assert decide(document, Request.on(action, endpoint, aws__TagKeys=["team:keep"])) == (
            "deny"
        )
        deadline = Request.on(action, endpoint, aws__TagKeys=["sagesaver:scheduled-action"])
        assert decide(document, deadline) == "allow"


def test_each_role_has_the_guards_of_its_capabilities() -> None:
    """(parliament reads them in test_template.py::test_parliament_finds_nothing_in_the_roles.)"""
    sids = {
        function: sorted(
            s["Sid"] for s in role_document(function)["Statement"] if s["Effect"] == "Deny"
        )
        for function in (IDLE_SCAN, SCHEDULE_TICK)
    }
    assert sids == {
        IDLE_SCAN: [
            "DenyExcludedEndpoints",
            "DenyExcludedStudioApps",
            "DenyExcludedWarmPools",
            "DenyProtectTagChanges",
            "DenyProtectedEndpoints",
            "DenyProtectedStudioApps",
            "DenyProtectedWarmPools",
        ],
        SCHEDULE_TICK: ["DenyProtectedScheduledNotebooks"],
    }
