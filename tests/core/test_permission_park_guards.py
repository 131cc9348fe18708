"""The protect tags, written as IAM for what parking by scaling changes: a schedule that parks
endpoints never takes a protected endpoint's instances or copies to 0, and the policy
``sagesaver permissions schedule`` prints refuses it too (an explicit ``Deny`` with the
resource's tag as condition), while an ordinary endpoint stays allowed.

Where each action's condition applies (AWS's service authorization reference, parliament's
copy): ``UpdateEndpointWeightsAndCapacities`` acts on ``endpoint*`` and
``UpdateInferenceComponentRuntimeConfig`` on ``inference-component*``, both with
``aws:ResourceTag``; ``RegisterScalableTarget`` acts on ``ScalableTarget*``, whose
``aws:ResourceTag`` is the scalable target's own tags (not its endpoint's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import parliament
import pytest

from sagesaver.core.permissions import left_to_code, scoped_document
from sagesaver.core.policy import parse_policy
from sagesaver.core.rules.parking import protected
from tests.iam_evaluator import Request, decide, denying_sids

ACCOUNT = "123456789012"
REGION = "cn-north-1"
POLICY = parse_policy(
    """
endpoints: {protect_tag: "team:keep"}
schedule_protect_tag: "sched:keep"
schedules:
  office:
    timezone: Asia/Shanghai
    periods: [{weekdays: mon-fri, begin: "07:00", end: "21:00"}]
    resources: [endpoints]
""",
    "park",
)
VALUES = ["true", "yes", "1", "keep", "", "on", "false", "False", "NO", "0", "off", "OFF"]
DEFINITIONS = json.loads(
    (Path(parliament.__file__).parent / "iam_definition.json").read_text(encoding="utf-8")
)


def arn_of(prefix: str, resource_type: str, **parts: str) -> str:
    """The ARN AWS checks, from AWS's own format (parliament's copy), in aws-cn."""
    service = next(s for s in DEFINITIONS if s["prefix"] == prefix)
    [found] = [r for r in service["resources"] if r["resource"] == resource_type]
    arn = str(found["arn"])
    every = {"Partition": "aws-cn", "Region": REGION, "Account": ACCOUNT, **parts}
    for name, value in every.items():
        arn = arn.replace("${" + name + "}", value)
    assert "${" not in arn, arn
    return arn


def resource_types(prefix: str, action: str) -> list[str]:
    service = next(s for s in DEFINITIONS if s["prefix"] == prefix)
    [found] = [p for p in service["privileges"] if p["privilege"] == action]
    return [t["resource_type"] for t in found["resource_types"] if t["resource_type"]]


ENDPOINT = arn_of("sagemaker", "endpoint", EndpointName="dev-queue")
COMPONENT = arn_of("sagemaker", "inference-component", InferenceComponentName="dev-llm-a")
TARGET = arn_of("application-autoscaling", "ScalableTarget", ResourceId="0123abcd")
NAMESPACE = {"application_autoscaling__service_namespace": "sagemaker"}
PARKS: list[tuple[str, str, dict[str, Any]]] = [
    ("sagemaker:UpdateEndpointWeightsAndCapacities", ENDPOINT, {}),
    ("sagemaker:UpdateInferenceComponentRuntimeConfig", COMPONENT, {}),
    ("sagemaker:DeleteEndpoint", ENDPOINT, {}),
    ("application-autoscaling:RegisterScalableTarget", TARGET, NAMESPACE),
]
IDS = [action.split(":")[1] for action, _, _ in PARKS]


def request(action: str, arn: str, tags: dict[str, str], more: dict[str, Any]) -> Request:
    extra = {k.replace("_", "-").replace("--", "__"): v for k, v in more.items()}
    return Request.on(action, arn, tags, **extra)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return scoped_document(["schedule"], [REGION], ACCOUNT, partition="aws-cn", policy=POLICY)


def test_the_resource_types_these_denies_rely_on_are_aws_s() -> None:
    assert resource_types("sagemaker", "UpdateEndpointWeightsAndCapacities") == ["endpoint*"]
    assert resource_types("sagemaker", "UpdateInferenceComponentRuntimeConfig") == [
        "inference-component*"
    ]
    assert resource_types("application-autoscaling", "RegisterScalableTarget") == [
        "ScalableTarget*"
    ]


@pytest.mark.parametrize(("action", "arn", "more"), PARKS, ids=IDS)
def test_a_park_on_a_protected_resource_is_denied_as_the_code_refuses_it(
    document: dict[str, Any], action: str, arn: str, more: dict[str, Any]
) -> None:
    assert decide(document, request(action, arn, {}, more)) == "allow"
    for key in ("team:keep", "sched:keep"):
        for value in VALUES:
            tags = {key: value}
            refused = protected(POLICY, tags)
            decision = decide(document, request(action, arn, tags, more))
            assert (decision == "deny") == refused, (key, value, decision)
            if refused:
                assert denying_sids(document, request(action, arn, tags, more))
    # another tag protects nothing here
    other = request(action, arn, {"sagesaver:protect": "true"}, more)
    assert decide(document, other) == "allow"


def test_what_iam_cannot_hold_for_parking_is_said() -> None:
    """A component's and a scalable target's own tags are not their endpoint's: the code reads
    the endpoint's; the Deny holds only where the tag is on them too."""
    lines = left_to_code(["schedule"], POLICY)
    assert any("UpdateInferenceComponentRuntimeConfig" in line for line in lines), lines
    assert any("RegisterScalableTarget" in line for line in lines), lines


def test_without_a_parking_schedule_no_park_deny_is_written() -> None:
    plain = parse_policy("schedule_protect_tag: 'sched:keep'", "plain")
    doc = scoped_document(["schedule"], [REGION], ACCOUNT, partition="aws-cn", policy=plain)
    sids = [s["Sid"] for s in doc["Statement"] if s["Effect"] == "Deny"]
    assert not [s for s in sids if "Park" in s or "ScalableTarget" in s], sids
