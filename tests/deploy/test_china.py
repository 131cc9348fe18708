"""The template in the China regions: cfn-lint-clean there, one partition, and what
CloudFormation lacks in a region said and worked around."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from sagesaver.core.errors import InputError
from sagesaver.core.policy import parse_policy
from sagesaver.deploy.availability import LIFECYCLE_TYPE, NOT_KNOWN, NOT_OFFERED, SCHEDULE_TYPE
from sagesaver.deploy.template import LIFECYCLE, render_template
from tests.conftest import Cli

CHINA = ("cn-north-1", "cn-northwest-1")
# The seed article's two workflows, for a team in Beijing: weekday 07:00/21:00 in China's
# time zone, the idle endpoint digest to an SNS topic in cn-north-1.
CHINA_POLICY = """
regions: [cn-north-1, cn-northwest-1]
notify:
  sns_topic_arn: arn:aws-cn:sns:cn-north-1:123456789012:ml-admins
endpoints:
  action: delete
  tags: {team: ml}
schedules:
  office-beijing:
    timezone: Asia/Shanghai
    periods:
      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}
    name_contains: dev-
"""


def _render(region: str | None, text: str = CHINA_POLICY) -> dict[str, Any]:
    return render_template(
        parse_policy(text, "p.yaml"), "code", "sagesaver.zip", ["ops@example.cn"], region=region
    )


@pytest.mark.parametrize("region", CHINA)
def test_cfn_lint_accepts_the_template_in_china(tmp_path: Path, region: str) -> None:
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    template = _render(region)
    path = tmp_path / "sagesaver.json"
    path.write_text(json.dumps(template, indent=2))
    matches = lint_file(path, ManualArgs(regions=[region]))
    assert [f"{m.rule.id} {m.message} {m.path}" for m in matches] == []
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {SCHEDULE_TYPE, LIFECYCLE_TYPE} <= kinds  # both offered in China


def test_no_arn_or_principal_names_a_partition_literally() -> None:
    text = json.dumps(_render("cn-north-1"))
    assert "arn:aws:" not in text and "arn:aws-cn:" not in text  # ${AWS::Partition} instead
    assert "amazonaws.com.cn" not in text  # service principals are global


@pytest.mark.parametrize(
    ("region", "text", "problem"),
    [
        ("us-east-1", CHINA_POLICY, "the stack's region us-east-1"),
        (
            "cn-north-1",
            "notify:\n  sns_topic_arn: arn:aws:sns:us-east-1:123456789012:admins\n",
            "notify.sns_topic_arn us-east-1",
        ),
        ("cn-north-1", "ledger: dynamodb://eu-west-1/team-ledger\n", "ledger eu-west-1"),
    ],
)
def test_a_stack_in_another_partition_than_its_policy_is_refused(
    region: str, text: str, problem: str
) -> None:
    with pytest.raises(InputError) as caught:
        _render(region, text)
    assert "several partitions" in str(caught.value) and problem in str(caught.value)


def test_render_exits_2_on_mixed_partitions(cli: Cli, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text("regions: [cn-north-1, eu-west-1]\n")
    result = cli("deploy", "render", "--policy", str(mixed), "--region", "cn-north-1")
    assert result.exit_code == 2
    assert "several partitions" in result.stderr and result.stdout == ""
    china = tmp_path / "china.yaml"
    china.write_text(CHINA_POLICY)
    other = cli("deploy", "render", "--policy", str(china), "--region", "us-west-2")
    assert other.exit_code == 2 and "several partitions" in other.stderr
    bad = cli("deploy", "render", "--policy", str(china), "--region", "Beijing")
    assert bad.exit_code == 2 and "--region" in bad.stderr
    good = cli("deploy", "render", "--policy", str(china), "--region", "cn-northwest-1")
    assert good.exit_code == 0, good.stderr
    assert json.loads(good.stdout)["Resources"][LIFECYCLE]["Type"] == LIFECYCLE_TYPE


def test_where_the_lifecycle_type_is_missing_render_says_so_and_leaves_it_out(
    cli: Cli, tmp_path: Path
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("regions: [me-central-1]\n")
    result = cli("deploy", "render", "--policy", str(policy), "--region", "me-central-1")
    assert result.exit_code == 0
    assert LIFECYCLE not in json.loads(result.stdout)["Resources"]
    assert f"{LIFECYCLE_TYPE} is not offered by CloudFormation in me-central-1" in result.stderr
    assert "sagesaver lifecycle install --region me-central-1" in result.stderr


def test_the_availability_table_is_what_cfn_lint_knows() -> None:
    """Recomputed from the installed cfn-lint's region specifications, for every region
    botocore lists as offering SageMaker in the three partitions."""
    import cfnlint  # type: ignore[import-untyped]

    folder = Path(cfnlint.__file__).parent / "data" / "schemas" / "providers"
    session = boto3.Session()
    regions = [
        region
        for partition in ("aws", "aws-cn", "aws-us-gov")
        for region in session.get_available_regions("sagemaker", partition_name=partition)
    ]
    assert set(CHINA) <= set(regions)
    template_types = {r["Type"] for r in _render(None)["Resources"].values()}
    missing: dict[str, set[str]] = {}
    unknown: set[str] = set()
    for region in regions:
        spec = folder / f"{region}.json"
        if not spec.exists():
            unknown.add(region)
            continue
        offered = json.loads(spec.read_text())
        for kind in template_types - set(offered):
            missing.setdefault(kind, set()).add(region)
    assert missing == {k: set(v) for k, v in NOT_OFFERED.items()}
    assert unknown == set(NOT_KNOWN)


def test_without_eventbridge_scheduler_the_functions_run_from_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    """No region lacks Scheduler today (see the availability table); should one, render says
    so and uses EventBridge rules, which cfn-lint accepts there."""
    from cfnlint.api import ManualArgs, lint_file

    from sagesaver.deploy import availability

    monkeypatch.setitem(availability.NOT_OFFERED, SCHEDULE_TYPE, frozenset({"cn-northwest-1"}))
    template = _render("cn-northwest-1")
    kinds = [r["Type"] for r in template["Resources"].values()]
    assert SCHEDULE_TYPE not in kinds and "AWS::IAM::Role" in kinds
    rules = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Events::Rule"}
    assert sorted(rules) == ["IdleScanSchedule", "ScheduleTickSchedule"]
    assert rules["ScheduleTickSchedule"]["Properties"]["ScheduleExpression"] == "rate(10 minutes)"
    permissions = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"
    ]
    assert {p["Properties"]["Principal"] for p in permissions} == {"events.amazonaws.com"}
    assert {p["Properties"]["SourceArn"]["Fn::GetAtt"][0] for p in permissions} == set(rules)
    assert "SchedulerRole" not in template["Resources"]
    assert "SchedulerRoleArn" not in template["Outputs"]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(template, indent=2))
    assert lint_file(path, ManualArgs(regions=["cn-northwest-1"])) == []
    policy = tmp_path / "p.yaml"
    policy.write_text(CHINA_POLICY)
    result = cli("deploy", "render", "--policy", str(policy), "--region", "cn-northwest-1")
    assert result.exit_code == 0
    assert f"{SCHEDULE_TYPE} is not offered by CloudFormation in cn-northwest-1" in result.stderr
    assert "EventBridge rules" in result.stderr


def test_a_schedule_with_a_calendar_ticks_at_its_boundaries_every_day(tmp_path: Path) -> None:
    """EventBridge Scheduler cannot tell China's holidays and make-up Saturdays (调休): the
    boundaries' ticks run on every day, and the tick's planning skips the days off."""
    from cfnlint.api import ManualArgs, lint_file

    text = CHINA_POLICY.replace(
        "    timezone: Asia/Shanghai\n", "    timezone: Asia/Shanghai\n    calendar: CN\n"
    )
    template = _render("cn-north-1", text)
    ticks = {
        (
            props["ScheduleExpression"],
            props["ScheduleExpressionTimezone"],
            json.loads(props["Target"]["Input"])["transition"],
        )
        for key, resource in template["Resources"].items()
        if resource["Type"] == SCHEDULE_TYPE and key != "IdleScanSchedule"
        for props in [resource["Properties"]]
    }
    assert ticks == {
        ("cron(0 7 ? * * *)", "Asia/Shanghai", "start"),
        ("cron(0 21 ? * * *)", "Asia/Shanghai", "stop"),
    }
    path = tmp_path / "sagesaver.json"
    path.write_text(json.dumps(template, indent=2))
    assert lint_file(path, ManualArgs(regions=["cn-north-1"])) == []
    # the rate tick is unchanged: every run plans every schedule, calendar included
    rate = render_template(
        parse_policy(text), "code", "sagesaver.zip", [], region="cn-north-1", tick="rate"
    )
    assert "ScheduleTickSchedule" in rate["Resources"]
