"""The stack of a policy whose schedule parks endpoints: the schedule function may park and
bring back the endpoints its schedule selects (not only those ``endpoints.tags`` selects for
idle deletion), it ticks often enough to bring them back ``lead_minutes`` early, and it may
open the sealed backups it restores from; the idle scan still may not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.policy import parse_policy
from sagesaver.deploy.names import IDLE_SCAN, LEDGER_KEY, SCHEDULE_TICK
from sagesaver.deploy.template import render_template

SCHEDULE = """
  office:
    timezone: Asia/Shanghai
    periods:
      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}
    name_contains: dev-
"""
PARKING = f"""
endpoints: {{action: delete, tags: {{team: ml}}}}
schedules:{SCHEDULE}    resources: [notebooks, endpoints]
"""
NOT_PARKING = f"""
endpoints: {{action: delete, tags: {{team: ml}}}}
schedules:{SCHEDULE}"""


def render(text: str, region: str = "cn-north-1") -> dict[str, Any]:
    policy = parse_policy(text, "p.yaml")
    return render_template(policy, "code", "sagesaver.zip", ["ops@example.cn"], region=region)


def statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = template["Resources"][f"{function}Role"]["Properties"]["Policies"][0]
    return list(role["PolicyDocument"]["Statement"])


def allowing(template: dict[str, Any], function: str, action: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements(template, function)
        if s["Effect"] == "Allow" and action in s["Action"]
    ]


def test_the_schedule_function_parks_what_its_schedule_selects_the_idle_scan_stays_bound() -> None:
    template = render(PARKING)
    [parks] = allowing(template, SCHEDULE_TICK, "sagemaker:DeleteEndpoint")
    assert "Condition" not in parks  # the schedule's own selectors, in code
    assert {"sagemaker:CreateEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"} <= set(
        parks["Action"]
    )
    [deletes] = allowing(template, IDLE_SCAN, "sagemaker:DeleteEndpoint")
    assert deletes["Condition"] == {"StringEquals": {"aws:ResourceTag/team": "ml"}}
    # The protect tag still refuses both, as IAM.
    denied = [
        s
        for s in statements(template, SCHEDULE_TICK)
        if s["Effect"] == "Deny" and "sagemaker:DeleteEndpoint" in s["Action"]
    ]
    assert denied and all("Condition" in s for s in denied)
    # It lists the components an endpoint hosts: such a host is never parked.
    assert allowing(template, SCHEDULE_TICK, "sagemaker:ListInferenceComponents")
    # Without parking, the schedule function cannot touch an endpoint.
    assert allowing(render(NOT_PARKING), SCHEDULE_TICK, "sagemaker:DeleteEndpoint") == []


def test_a_parking_schedule_ticks_every_interval_at_most_lead_minutes() -> None:
    def rates(template: dict[str, Any]) -> list[str]:
        return sorted(
            r["Properties"]["ScheduleExpression"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Scheduler::Schedule"
            and r["Properties"]["ScheduleExpression"].startswith("rate(")
            and "office" in json.dumps(r["Properties"]["Target"])
        )

    assert rates(render(NOT_PARKING)) == []
    assert rates(render(PARKING)) == ["rate(10 minutes)"]
    assert rates(render(PARKING + "    lead_minutes: 5\n")) == ["rate(5 minutes)"]


def test_only_the_schedule_function_of_a_parking_stack_may_open_backups() -> None:
    def openers(template: dict[str, Any]) -> list[Any]:
        key = template["Resources"][LEDGER_KEY]["Properties"]["KeyPolicy"]["Statement"]
        return [
            (s["Condition"]["StringEquals"], s["Condition"]["ArnLike"]["aws:PrincipalArn"])
            for s in key
            if "kms:Decrypt" in s["Action"] and "Null" in s["Condition"]  # a backup, directly
        ]

    # Recognised by its role's tags (the stack's name and the function), not by the name
    # CloudFormation generates for the role (shortened for a long stack name).
    [(tags, arn)] = openers(render(PARKING))
    assert tags == {
        "kms:CallerAccount": {"Ref": "AWS::AccountId"},
        "aws:PrincipalTag/sagesaver:stack": {"Ref": "AWS::StackName"},
        "aws:PrincipalTag/sagesaver:function": SCHEDULE_TICK,
    }
    assert arn == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
    role = render(PARKING)["Resources"][f"{SCHEDULE_TICK}Role"]["Properties"]
    assert {"Key": "sagesaver:function", "Value": SCHEDULE_TICK} in role["Tags"]
    assert openers(render(NOT_PARKING)) == []

    def ledger_decrypt(function: str) -> list[dict[str, Any]]:
        return [
            s
            for s in statements(render(PARKING), function)
            if "kms:Decrypt" in s["Action"] and LEDGER_KEY in json.dumps(s["Resource"])
        ]

    assert ledger_decrypt(SCHEDULE_TICK)
    assert ledger_decrypt(IDLE_SCAN) == []


@pytest.mark.parametrize("region", ["cn-north-1", "us-east-1"])
def test_the_parking_stack_passes_cfn_lint(tmp_path: Path, region: str) -> None:
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    path = tmp_path / "sagesaver.json"
    path.write_text(json.dumps(render(PARKING, region)))
    matches = lint_file(path, ManualArgs(regions=[region]))
    assert [f"{m.rule.id} {m.message} {m.path}" for m in matches] == []


def test_the_schedule_function_is_refused_by_iam_what_the_park_guard_refuses() -> None:
    """The deployed role carries the park's Deny statements, as `permissions -c schedule`
    prints them: the instances taken to 0 and an inference component's copies are refused on
    either protect tag (the endpoints' and the schedules'), the deletion too."""
    policy = parse_policy(PARKING, "p.yaml")
    template = render(PARKING)
    denies = [s for s in statements(template, SCHEDULE_TICK) if s["Effect"] == "Deny"]
    for action in (
        "sagemaker:DeleteEndpoint",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
        "sagemaker:UpdateInferenceComponentRuntimeConfig",
    ):
        refusing = [s for s in denies if action in s["Action"]]
        keys = {
            key
            for s in refusing
            for test in s["Condition"].values()
            for key in (test if isinstance(test, dict) else {})
        }
        assert {
            f"aws:ResourceTag/{policy.endpoints.protect_tag}",
            f"aws:ResourceTag/{policy.schedule_protect_tag}",
        } <= keys, (action, refusing)
    # not parking: no park guard (nothing to refuse)
    quiet = [s for s in statements(render(NOT_PARKING), SCHEDULE_TICK) if s["Effect"] == "Deny"]
    assert not [
        s for s in quiet if "sagemaker:UpdateInferenceComponentRuntimeConfig" in s["Action"]
    ]
