"""The deployment template: cfn-lint, least-privilege IAM, resources, and a stack on moto."""

from __future__ import annotations

import ast
import base64
import io
import json
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.cron import to_eventbridge_expressions
from sagesaver.core.errors import InputError
from sagesaver.core.lifecycle import AgentOptions, render_on_start
from sagesaver.core.permissions import CAPABILITIES
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.deploy.iam import LEDGER_KEY_ACTIONS
from sagesaver.deploy.names import LEDGER_KEY
from sagesaver.deploy.package import RUNTIME
from sagesaver.deploy.template import (
    DEAD_LETTER_ACTIONS,
    EXTRA_ACTIONS,
    FUNCTIONS,
    IDLE_SCAN,
    LEDGER_ACTIONS,
    LOG_ACTIONS,
    SCHEDULE_TICK,
    SCHEDULER_ROLE,
    TABLE,
    TOPIC,
    TOPIC_KEY_ACTIONS,
    UNSCOPED_ACTIONS,
    declared_actions,
    policy_text,
    render_template,
    template_actions,
)

EAST = "us-east-1"
BUCKET, KEY = "sagesaver-code", "sagesaver-0.1.0.zip"
EMAILS = ["ops@example.com", "ml-team@example.org", "OPS@example.com"]

# The README's schedules (office-berlin + seed-example), scanning two regions.
SCHEDULED = """
regions: [us-east-1, eu-west-1]
notify:
  sns_topic_arn: arn:aws:sns:us-east-1:123456789012:will-be-replaced
  subject_prefix: Dev
schedules:
  office-berlin:
    timezone: Europe/Berlin
    periods:
      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}
    name_contains: dev-
  seed-example:
    start: cron(0 7 ? * MON-FRI *)
    stop: "0 21 * * 1-5"
    name_contains: dev-
    enforced: false
    interval_minutes: 10
schedule_protect_tag: sagesaver:protect
"""
# No schedules, deleting endpoints; a tag value that looks like a CloudFormation variable.
PLAIN = """
endpoints:
  idle_hours: 48
  exclude: ["prod-*"]
  tags: {owner: "${team}"}
  action: delete
  grace_hours: 12
"""
# An enforced overnight schedule in a third time zone.
ENFORCED = """
schedules:
  night-shift:
    timezone: Asia/Tokyo
    periods:
      - {weekdays: daily, begin: "22:00", end: "06:00"}
    enforced: true
    interval_minutes: 5
    tags: {shift: night}
"""
# Releasing idle warm pools, endpoints only reported.
RELEASING = """
jobs:
  warm_pools: {action: release, idle_hours: 1}
"""
POLICIES = {"scheduled": SCHEDULED, "plain": PLAIN, "enforced": ENFORCED, "releasing": RELEASING}


def policy(name: str) -> Policy:
    return parse_policy(POLICIES[name], name)


def render(name: str, **options: Any) -> dict[str, Any]:
    return render_template(policy(name), BUCKET, KEY, list(EMAILS), **options)


VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "scheduled": ("scheduled", {}),
    "scheduled-rate": ("scheduled", {"tick": "rate", "tick_minutes": 15}),
    "scheduled-arm64": (
        "scheduled",
        {"architecture": "arm64", "scan_schedule": "rate(30 minutes)"},
    ),
    "plain": ("plain", {}),
    "enforced": ("enforced", {}),
    "releasing": ("releasing", {}),
}


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def references(node: Any) -> set[str]:
    """Logical ids a template fragment points at (Ref, GetAtt, Fn::Sub variables)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub" and isinstance(value, str):
                found.update(re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", value))
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def statements_of(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_suffix(function: str) -> str:
    return FUNCTIONS[function].name


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def resolve_sub(text: str, values: dict[str, str]) -> str:
    """What Fn::Sub does with ``text``: ``${NAME}`` from ``values``, ``${!`` to ``${``."""
    unknown = set(re.findall(r"\$\{(?!!)([^}]*)\}", text)) - set(values)
    assert not unknown, f"unresolved variables {unknown}"
    for name, value in values.items():
        text = text.replace(f"${{{name}}}", value)
    return text.replace("${!", "${")


# --- cfn-lint -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """cfn-lint's matches for every rendered variant (one JSON file each)."""
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    folder = tmp_path_factory.mktemp("templates")
    results = {}
    for variant, (name, options) in VARIANTS.items():
        path = folder / f"{variant}.json"
        path.write_text(json.dumps(render(name, **options), indent=2))
        results[variant] = lint_file(path, ManualArgs(regions=[EAST, "eu-central-1"]))
    return results


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cfn_lint_finds_no_errors(linted: dict[str, list[Any]], variant: str) -> None:
    matches = linted[variant]
    errors = [f"{m.rule.id} {m.message} {m.path}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
    # None reported today either; listed here so a new one shows in the failure output.
    warnings = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("W")]
    assert warnings == []


# --- IAM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_action_is_declared_and_none_is_a_wildcard(variant: str) -> None:
    template = render(VARIANTS[variant][0], **VARIANTS[variant][1])
    actions = template_actions(template)
    declared = {a for group in CAPABILITIES.values() for a in group}
    declared |= {a for group in EXTRA_ACTIONS.values() for a in group}
    assert declared == declared_actions()
    assert actions and actions <= declared
    assert not [a for a in actions if "*" in a or "?" in a]
    dumped = json.dumps(template)
    assert "ManagedPolicyArns" not in dumped and "FullAccess" not in dumped


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_role_grants_exactly_its_declared_capabilities(name: str) -> None:
    chosen = policy(name)
    template = render(name)
    roles = resources_of(template, "AWS::IAM::Role")
    deletes = chosen.endpoints.action == "delete"
    # The ledger always: it keeps a retried invocation from sending its digest twice.
    expected_scan = {*CAPABILITIES["scan"], *CAPABILITIES["notify"], *LOG_ACTIONS, *LEDGER_ACTIONS}
    # The topic's own key to publish with, and the dead-letter queue for failed invocations.
    expected_scan |= {*TOPIC_KEY_ACTIONS, *DEAD_LETTER_ACTIONS}
    # Live prices from the partition's Price List (cached in the ledger table).
    expected_scan |= {*CAPABILITIES["live-prices"]}
    if deletes:
        # Each backup sealed under the ledger table's key (issue 29): never opened.
        expected_scan |= {*CAPABILITIES["enforce"], *LEDGER_KEY_ACTIONS}
        # Configurations are deleted only with delete_config: true.
        if not chosen.endpoints.delete_config:
            expected_scan.discard("sagemaker:DeleteEndpointConfig")
    # Warm pools are ended only when the policy releases them.
    if chosen.jobs.warm_pools.action == "release":
        expected_scan |= {*CAPABILITIES["release-warm-pools"]}
    got = template_actions({"Resources": {"R": roles[f"{IDLE_SCAN}Role"]}})
    assert got == expected_scan
    assert sorted(got) == FUNCTIONS[IDLE_SCAN].actions_for(chosen)
    if chosen.schedules:
        got = template_actions({"Resources": {"R": roles[f"{SCHEDULE_TICK}Role"]}})
        assert got == {
            *CAPABILITIES["schedule"],
            *CAPABILITIES["live-prices"],
            *LEDGER_ACTIONS,
            *LOG_ACTIONS,
            *DEAD_LETTER_ACTIONS,
        }
    scheduler = roles[SCHEDULER_ROLE]
    [invoke, dead_letters] = statements_of(scheduler)
    assert invoke["Action"] == ["lambda:InvokeFunction"]
    assert dead_letters["Action"] == ["sqs:SendMessage"]  # what it could not deliver
    assert dead_letters["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    functions = resources_of(template, "AWS::Lambda::Function")
    assert invoke["Resource"] == [{"Fn::GetAtt": [f, "Arn"]} for f in functions]
    trust = scheduler["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    for function in functions:
        trust = roles[f"{function}Role"]["Properties"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert set(roles) == {f"{f}Role" for f in functions} | {SCHEDULER_ROLE}


ARN_PREFIX = "arn:${AWS::Partition}:sagemaker:"


def _is_read_only(action: str) -> bool:
    return action.split(":", 1)[1].startswith(("Describe", "List", "Get", "Search"))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_resources_are_narrowed(name: str) -> None:
    chosen = policy(name)
    template = render(name)
    regions = chosen.regions or ["${AWS::Region}"]
    arn = re.compile(
        r"^arn:\$\{AWS::Partition\}:sagemaker:"
        r"(?P<region>\$\{AWS::Region\}|[a-z0-9-]+):\$\{AWS::AccountId\}:"
        r"(?P<type>[a-z-]+)/\*$"
    )
    for logical, role in resources_of(template, "AWS::IAM::Role").items():
        if logical == SCHEDULER_ROLE:
            continue
        function = logical.removesuffix("Role")
        statements = statements_of(role)
        assert all(s.get("Sid") for s in statements)
        assert len({s["Sid"] for s in statements}) == len(statements)
        for statement in statements:
            actions = as_list(statement["Action"])
            resources = as_list(statement["Resource"])
            if statement["Effect"] == "Deny":  # the guards: tests/deploy/test_iam_guards.py
                assert all(r["Fn::Sub"].startswith(ARN_PREFIX) for r in resources), resources
                continue
            read = [_is_read_only(a) for a in actions]
            if any(a.startswith("sagemaker:") for a in actions):
                assert all(read) or not any(read), f"{statement['Sid']} mixes reads and changes"
            if resources == ["*"]:
                assert set(actions) <= UNSCOPED_ACTIONS and all(read), statement
                continue
            assert "*" not in resources
            if all(a.startswith("sagemaker:") for a in actions):
                scoped = [arn.match(r["Fn::Sub"]) for r in resources]
                assert all(scoped), resources
                assert {m["region"] for m in scoped if m} == set(regions)
            elif actions == ["sns:Publish"]:
                assert resources == [{"Ref": TOPIC}]
            elif set(actions) <= set(LEDGER_ACTIONS):
                assert resources == [{"Fn::GetAtt": [TABLE, "Arn"]}]
            elif set(actions) <= set(TOPIC_KEY_ACTIONS):
                assert resources == [{"Fn::GetAtt": ["TopicKey", "Arn"]}]
            elif set(actions) <= set(LEDGER_KEY_ACTIONS):
                assert resources == [{"Fn::GetAtt": [LEDGER_KEY, "Arn"]}]
            elif set(actions) <= set(DEAD_LETTER_ACTIONS):
                assert resources == [{"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}]
            else:
                assert set(actions) == set(LOG_ACTIONS)
                assert resources == [{"Fn::GetAtt": [f"{function}LogGroup", "Arn"]}]
        changes = [
            a
            for s in statements
            if s["Effect"] == "Allow"
            for a in as_list(s["Action"])
            if a.startswith("sagemaker:") and not _is_read_only(a)
        ]
        expected_changes = {
            IDLE_SCAN: (
                {
                    "sagemaker:AddTags",
                    "sagemaker:DeleteTags",
                    "sagemaker:DeleteEndpoint",
                    *(["sagemaker:DeleteEndpointConfig"] if chosen.endpoints.delete_config else []),
                }
                if chosen.endpoints.action == "delete"
                else set()
            )
            | (
                {"sagemaker:UpdateTrainingJob"}
                if chosen.jobs.warm_pools.action == "release"
                else set()
            ),
            SCHEDULE_TICK: {"sagemaker:StartNotebookInstance", "sagemaker:StopNotebookInstance"},
        }[function]
        assert set(changes) == expected_changes


def test_template_actions_reads_every_inline_policy_shape() -> None:
    template = {
        "Resources": {
            "A": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {"Statement": [{"Action": "sts:AssumeRole"}]},
                    "Policies": [{"PolicyDocument": {"Statement": {"Action": "s3:GetObject"}}}],
                },
            },
            "B": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyDocument": {"Statement": [{"Action": ["sqs:SendMessage"]}]}},
            },
            "C": {"Type": "AWS::SNS::Topic", "Properties": {}},
        }
    }
    assert template_actions(template) == {"s3:GetObject", "sqs:SendMessage"}


# --- resources ------------------------------------------------------------------------------


def test_ledger_topic_logs_and_lifecycle_configuration() -> None:
    template = render("scheduled")
    [table] = resources_of(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "LedgerKey"}  # its own key
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"

    [topic] = resources_of(template, "AWS::SNS::Topic").values()
    # Its own key: CloudWatch alarms cannot publish to a topic under the AWS managed SNS key.
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "TopicKey"}
    key = template["Resources"]["TopicKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    services = [s["Principal"].get("Service") for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert "cloudwatch.amazonaws.com" in services
    functions = resources_of(template, "AWS::Lambda::Function")
    alarms = {
        k: v
        for k, v in resources_of(template, "AWS::CloudWatch::Alarm").items()
        if k.endswith("ErrorsAlarm")  # the throttles and dead letters: test_hardening.py
    }
    assert set(alarms) == {f"{f}ErrorsAlarm" for f in functions}
    for logical, alarm in alarms.items():
        props = alarm["Properties"]
        assert (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", "Errors")
        assert props["Dimensions"] == [
            {"Name": "FunctionName", "Value": {"Ref": logical.removesuffix("ErrorsAlarm")}}
        ]
        assert props["AlarmActions"] == [{"Ref": TOPIC}] and props["Threshold"] == 1
    [queue] = resources_of(template, "AWS::SQS::Queue")
    for function in functions.values():
        dead_letters = function["Properties"]["DeadLetterConfig"]["TargetArn"]
        assert dead_letters == {"Fn::GetAtt": [queue, "Arn"]}
    subscriptions = resources_of(template, "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == [
        "ml-team@example.org",
        "ops@example.com",
    ]  # OPS@example.com is the same mailbox
    assert all(s["Properties"]["Protocol"] == "email" for s in subscriptions)
    assert all(s["Properties"]["TopicArn"] == {"Ref": TOPIC} for s in subscriptions)

    functions = resources_of(template, "AWS::Lambda::Function")
    groups = resources_of(template, "AWS::Logs::LogGroup")
    assert set(groups) == {f"{f}LogGroup" for f in functions}
    for logical, function in functions.items():
        group = groups[f"{logical}LogGroup"]["Properties"]
        assert group["RetentionInDays"] == 30
        name = function["Properties"]["FunctionName"]["Fn::Sub"]
        assert name.startswith("${AWS::StackName}-")
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{name}"}

    [lifecycle] = resources_of(template, "AWS::SageMaker::NotebookInstanceLifecycleConfig").values()
    assert lifecycle["Properties"]["NotebookInstanceLifecycleConfigName"] == "sagesaver-autostop"
    [on_start] = lifecycle["Properties"]["OnStart"]
    assert base64.b64decode(on_start["Content"]).decode() == render_on_start(AgentOptions())

    outputs = template["Outputs"]
    assert outputs["TopicArn"]["Value"] == {"Ref": TOPIC}
    assert outputs["LedgerTableName"]["Value"] == {"Ref": TABLE}
    assert {k: v["Value"] for k, v in outputs.items() if k.endswith("FunctionArn")} == {
        f"{f}Arn": {"Fn::GetAtt": [f, "Arn"]} for f in functions
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_functions(variant: str) -> None:
    name, options = VARIANTS[variant]
    chosen = policy(name)
    template = render(name, **options)
    functions = resources_of(template, "AWS::Lambda::Function")
    assert set(functions) == ({IDLE_SCAN, SCHEDULE_TICK} if chosen.schedules else {IDLE_SCAN})
    for logical, function in functions.items():
        props = function["Properties"]
        assert props["Handler"] == FUNCTIONS[logical].handler
        assert props["Runtime"] == RUNTIME
        assert props["Architectures"] == [options.get("architecture", "x86_64")]
        assert props["Code"] == {"S3Bucket": BUCKET, "S3Key": KEY}
        assert props["Role"] == {"Fn::GetAtt": [f"{logical}Role", "Arn"]}
        assert 128 <= props["MemorySize"] <= 10240 and 1 <= props["Timeout"] <= 900
        # Not reserved by default: leases keep runs apart (test_hardening.py).
        assert "ReservedConcurrentExecutions" not in props
        env = props["Environment"]["Variables"]
        assert env["SAGESAVER_APPLY"] == "true"
        assert env["SAGESAVER_LEDGER"] == {"Fn::Sub": f"dynamodb://${{{TABLE}}}"}
        assert env["SAGESAVER_REGIONS"] == (
            ",".join(chosen.regions) if chosen.regions else {"Ref": "AWS::Region"}
        )
        assert env["SAGESAVER_POLICY"] == {"Fn::Sub": policy_text(chosen)}
    # Every reference points at a resource of the template (or a pseudo parameter).
    known = set(template["Resources"])
    assert {r for r in references(template) if not r.startswith("AWS::")} <= known


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_text_reads_back_as_the_policy_with_the_stacks_topic(name: str) -> None:
    chosen = policy(name)
    topic = "arn:aws:sns:eu-central-1:210987654321:sagesaver-NotificationTopic-ABC123"
    text = resolve_sub(policy_text(chosen), {TOPIC: topic})
    again = parse_policy(text, "SAGESAVER_POLICY")
    expected = chosen.model_copy(
        update={"notify": chosen.notify.model_copy(update={"sns_topic_arn": topic})}
    )
    assert again == expected
    if name == "plain":
        assert again.endpoints.tags == {"owner": "${team}"}  # escaped, not substituted


def test_boundary_schedules_follow_the_policy_in_its_time_zones() -> None:
    chosen = policy("scheduled")
    template = render("scheduled")
    schedules = resources_of(template, "AWS::Scheduler::Schedule")
    scan = schedules.pop("IdleScanSchedule")["Properties"]
    assert scan["ScheduleExpression"] == "rate(1 hour)"
    assert scan["Target"]["Input"] == "{}"
    assert scan["Target"]["Arn"] == {"Fn::GetAtt": [IDLE_SCAN, "Arn"]}
    expected = set()
    for name, spec in chosen.schedules.items():
        for transition, expression in to_eventbridge_expressions(spec.build(name)):
            expected.add((name, transition.value, expression, spec.timezone))
    got = set()
    for resource in schedules.values():
        props = resource["Properties"]
        payload = json.loads(props["Target"]["Input"])
        got.add(
            (
                payload["schedule"],
                payload["transition"],
                props["ScheduleExpression"],
                props["ScheduleExpressionTimezone"],
            )
        )
    assert got == expected
    assert {t for *_, t in got} == {"Europe/Berlin", "UTC"}
    for resource in [*schedules.values(), {"Properties": scan}]:
        props = resource["Properties"]
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert props["Target"]["RoleArn"] == {"Fn::GetAtt": [SCHEDULER_ROLE, "Arn"]}
        assert props["State"] == "ENABLED"
    assert all(
        r["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [SCHEDULE_TICK, "Arn"]}
        for r in schedules.values()
    )


def test_enforced_schedules_also_tick_at_their_interval() -> None:
    template = render("enforced")
    ticks = {
        k: v["Properties"]
        for k, v in resources_of(template, "AWS::Scheduler::Schedule").items()
        if k != "IdleScanSchedule"
    }
    assert {(p["ScheduleExpression"], p["ScheduleExpressionTimezone"]) for p in ticks.values()} == {
        ("cron(0 22 ? * MON,TUE,WED,THU,FRI,SAT,SUN *)", "Asia/Tokyo"),
        ("cron(0 6 ? * TUE,WED,THU,FRI,SAT,SUN,MON *)", "Asia/Tokyo"),
        ("rate(5 minutes)", "Asia/Tokyo"),
    }
    [enforcer] = [p for p in ticks.values() if p["ScheduleExpression"].startswith("rate")]
    assert json.loads(enforcer["Target"]["Input"]) == {"schedule": "night-shift"}


def test_a_stop_and_a_start_at_the_same_moment_share_one_schedule() -> None:
    text = """
schedules:
  split-day:
    timezone: America/Sao_Paulo
    periods:
      - {weekdays: mon-fri, begin: "08:00", end: "12:00"}
      - {weekdays: mon-fri, begin: "12:00", end: "18:00"}
"""
    template = render_template(parse_policy(text), BUCKET, KEY, [])
    expressions = [
        r["Properties"]["ScheduleExpression"]
        for k, r in resources_of(template, "AWS::Scheduler::Schedule").items()
        if k != "IdleScanSchedule"
    ]
    assert sorted(expressions) == [
        "cron(0 12 ? * MON,TUE,WED,THU,FRI *)",
        "cron(0 18 ? * MON,TUE,WED,THU,FRI *)",
        "cron(0 8 ? * MON,TUE,WED,THU,FRI *)",
    ]


def test_rate_tick_runs_every_schedule_every_tick_minutes() -> None:
    template = render("scheduled", tick="rate", tick_minutes=1)
    schedules = resources_of(template, "AWS::Scheduler::Schedule")
    assert set(schedules) == {"IdleScanSchedule", "ScheduleTickSchedule"}
    tick = schedules["ScheduleTickSchedule"]["Properties"]
    assert tick["ScheduleExpression"] == "rate(1 minute)"
    assert tick["Target"]["Input"] == "{}"  # no schedule named: the run handles all of them


def test_without_schedules_there_is_no_tick() -> None:
    template = render("plain", scan_schedule="cron(0 6 * * ? *)")
    assert not [k for k in template["Resources"] if "Tick" in k]
    assert [k for k in template["Outputs"] if "Tick" in k] == []
    [scan] = resources_of(template, "AWS::Scheduler::Schedule").values()
    assert scan["Properties"]["ScheduleExpression"] == "cron(0 6 * * ? *)"
    [invoke, _dead_letters] = statements_of(template["Resources"][SCHEDULER_ROLE])
    assert invoke["Resource"] == [{"Fn::GetAtt": [IDLE_SCAN, "Arn"]}]


def test_logical_ids_are_stable_and_distinct() -> None:
    text = SCHEDULED.replace("seed-example", "office_berlin")  # the same letters, other name
    first = render_template(parse_policy(text), BUCKET, KEY, [])
    again = render_template(parse_policy(text), BUCKET, KEY, [])
    assert first == again
    ticks = [k for k in first["Resources"] if k.startswith("Tick")]
    assert len(ticks) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9]{1,255}", k) for k in first["Resources"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"architecture": "arm"}, "architecture"),
        ({"tick_minutes": 0}, "tick minutes"),
        ({"scan_schedule": "hourly"}, "scan schedule"),
        ({"tick": "sometimes"}, "tick"),
        ({"emails": ["not an address"]}, "e-mail"),
        ({"code_bucket": " "}, "code bucket"),
    ],
)
def test_bad_arguments_are_input_errors(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "policy": policy("scheduled"),
        "code_bucket": BUCKET,
        "code_key": KEY,
        "emails": EMAILS,
    }
    arguments.update(options)
    with pytest.raises(InputError, match=message):
        render_template(**arguments)


def test_a_policy_too_large_for_lambdas_environment_is_an_input_error() -> None:
    globs = ", ".join(f"'team-{i:04d}-*'" for i in range(300))
    with pytest.raises(InputError, match="could exceed the 4096 bytes"):
        render_template(parse_policy(f"endpoints: {{exclude: [{globs}]}}"), BUCKET, KEY, [])


# --- a stack on the simulator ---------------------------------------------------------------


def supported_by_moto(template: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """``template`` with only the resources moto's CloudFormation creates, the outputs that
    still resolve, and the types that were dropped."""
    from moto.cloudformation.parsing import resource_class_from_type

    resources = template["Resources"]
    dropped = {r["Type"] for r in resources.values() if not resource_class_from_type(r["Type"])}
    kept = {k: v for k, v in resources.items() if v["Type"] not in dropped}
    for logical, resource in kept.items():
        dangling = references(resource) - set(kept)
        assert {d for d in dangling if not d.startswith("AWS::")} == set(), logical
    outputs = {k: v for k, v in template["Outputs"].items() if references(v) <= set(kept)}
    return {**template, "Resources": kept, "Outputs": outputs}, dropped


def create_stack(sim: Simulator, name: str, stack_name: str = "sagesaver") -> dict[str, str]:
    """The template of policy ``name`` created as a stack on the simulator; its outputs."""
    template, dropped = supported_by_moto(render(name))
    # moto's CloudFormation has no EventBridge Scheduler, no separate SNS subscriptions and
    # no CloudWatch alarms.
    assert dropped <= {
        "AWS::Scheduler::Schedule",
        "AWS::SNS::Subscription",
        "AWS::CloudWatch::Alarm",
    }
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("sagesaver/__init__.py", "")
    s3 = sim.client("s3", EAST)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=archive.getvalue())
    cloudformation = sim.client("cloudformation", EAST)
    cloudformation.create_stack(
        StackName=stack_name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
    )
    [described] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def ledger_key_as_deployed(table: str) -> None:
    """Two gaps of moto's CloudFormation, filled in its state: the table's ``SSESpecification``
    is kept in CloudFormation's spelling (``SSEEnabled``), which its DescribeTable does not
    read (the table would report no key); and the key's policy is kept as a dict, which its
    KMS cannot parse (every call on the key fails). As AWS does, DescribeTable then names the
    stack's ledger key, and the key answers."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.kms.models import kms_backends

    from sagesaver.demo.simulator import ACCOUNT_ID

    spec = dynamodb_backends[ACCOUNT_ID][EAST].tables[table].sse_specification
    spec["Enabled"] = spec.pop("SSEEnabled")
    key = kms_backends[ACCOUNT_ID][EAST].keys[spec["KMSMasterKeyId"]]
    if isinstance(key.policy, dict):
        key.policy = json.dumps(key.policy)


@pytest.fixture
def stack(sim: Simulator) -> dict[str, str]:
    """The scheduled template created as stack ``sagesaver``: its outputs."""
    return create_stack(sim, "scheduled")


@pytest.mark.slow
def test_stack_creates_on_the_simulator(sim: Simulator, stack: dict[str, str]) -> None:
    table = sim.client("dynamodb", EAST).describe_table(TableName=stack["LedgerTableName"])
    assert [k["AttributeName"] for k in table["Table"]["KeySchema"]] == ["pk", "sk"]
    attributes = sim.client("sns", EAST).get_topic_attributes(TopicArn=stack["TopicArn"])
    made = sim.client("cloudformation", EAST).describe_stack_resources(StackName="sagesaver")
    physical_ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in made["StackResources"]}
    # The stack's own key (CloudWatch alarms cannot publish under the AWS managed SNS key).
    assert attributes["Attributes"]["KmsMasterKeyId"] == physical_ids["TopicKey"]
    assert "DeadLetterQueue" in physical_ids

    iam = sim.client("iam", EAST)
    cloudformation = sim.client("cloudformation", EAST)
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName="sagesaver")[
            "StackResourceSummaries"
        ]
    }
    for function in (IDLE_SCAN, SCHEDULE_TICK):
        role = physical[f"{function}Role"]
        [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):  # moto keeps a CloudFormation role's policy as a repr
            document = ast.literal_eval(document)
        granted = {a for s in document["Statement"] for a in as_list(s["Action"])}
        assert sorted(granted) == FUNCTIONS[function].actions_for(policy("scheduled"))
        assert stack[f"{function}Arn"].endswith(f":function:sagesaver-{function_suffix(function)}")
    assert iam.get_role(RoleName=physical[SCHEDULER_ROLE])["Role"]["Arn"]

    groups = sim.client("logs", EAST).describe_log_groups(logGroupNamePrefix="/aws/lambda/")
    assert {(g["logGroupName"], g["retentionInDays"]) for g in groups["logGroups"]} == {
        ("/aws/lambda/sagesaver-idle-scan", 30),
        ("/aws/lambda/sagesaver-schedule-tick", 30),
    }
    # moto names the configuration itself (it ignores the name property).
    lifecycle = sim.client("sagemaker", EAST).describe_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName=physical["AutoStopLifecycleConfig"].split("/")[-1]
    )
    content = lifecycle["OnStart"][0]["Content"]
    assert base64.b64decode(content).decode() == render_on_start(AgentOptions())


def deployed_environment(sim: Simulator, function: str) -> dict[str, str]:
    configuration = sim.client("lambda", EAST).get_function_configuration(
        FunctionName=f"sagesaver-{function_suffix(function)}"
    )
    variables: dict[str, str] = configuration["Environment"]["Variables"]
    return variables


def operations_are_granted(operations: set[str], actions: list[str]) -> list[str]:
    """The operations no granted action allows (matched by action name)."""
    names = {a.split(":", 1)[1] for a in actions}
    return sorted(op for op in operations if op not in names)


@pytest.mark.slow
def test_handlers_run_with_the_deployed_configuration(
    sim: Simulator,
    fleet: Fleet,
    stack: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handlers, configured only by the environment CloudFormation resolved, reach the
    stack's topic and ledger and call nothing their role does not grant."""
    import time_machine

    from sagesaver.lambda_handlers import idle_endpoints, schedule_tick

    chosen = policy("scheduled")
    fleet.endpoint(EAST, "forgotten", changed=parse_time("2026-11-20T00:00:00Z"))
    fleet.notebook(EAST, "dev-alice", status="Stopped", tags={"sagesaver:schedule": "seed-example"})

    env = deployed_environment(sim, IDLE_SCAN)
    assert env == deployed_environment(sim, SCHEDULE_TICK)
    assert parse_policy(env["SAGESAVER_POLICY"]).notify.sns_topic_arn == stack["TopicArn"]
    assert env["SAGESAVER_LEDGER"] == f"dynamodb://{stack['LedgerTableName']}"
    assert env["SAGESAVER_REGIONS"] == "us-east-1,eu-west-1"
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    sim.middleware.counts.clear()
    with time_machine.travel("2026-11-30T10:00:00Z", tick=False):
        scanned = idle_endpoints({}, None)
    assert scanned["ok"], scanned
    assert [e["name"] for e in scanned["idle_endpoints"]] == ["forgotten"]
    assert scanned["notified"] and len(fleet.published(stack["TopicArn"])) == 1
    used = set(sim.middleware.counts)
    assert operations_are_granted(used, FUNCTIONS[IDLE_SCAN].actions_for(chosen)) == []

    # The seed-example start boundary fires at 07:00 UTC on a Monday (within the minute).
    sim.middleware.counts.clear()
    with time_machine.travel("2026-11-30T07:00:40Z", tick=False):
        ticked = schedule_tick({"schedule": "seed-example", "transition": "start"}, None)
    assert ticked["ok"], ticked
    assert [(a["name"], a["action"], a["applied"]) for a in ticked["actions"]] == [
        ("dev-alice", "start", True)
    ]
    used = set(sim.middleware.counts)
    assert {"DescribeTable", "GetItem", "PutItem"} <= used
    assert operations_are_granted(used, FUNCTIONS[SCHEDULE_TICK].actions_for(chosen)) == []
    # The ledger now holds the run: a repeated invocation acts on nothing.
    with time_machine.travel("2026-11-30T07:00:50Z", tick=False):
        again = schedule_tick({"schedule": "seed-example"}, None)
    assert again["ok"] and again["actions"] == []


@pytest.mark.slow
def test_a_named_tick_skips_instances_two_schedules_select(
    sim: Simulator, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time_machine

    from sagesaver.lambda_handlers import schedule_tick

    fleet.notebook(EAST, "dev-bob", status="Stopped")  # office-berlin and seed-example
    monkeypatch.setenv("SAGESAVER_POLICY", SCHEDULED)
    monkeypatch.setenv("SAGESAVER_REGIONS", EAST)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    with time_machine.travel("2026-11-30T07:00:40Z", tick=False):
        ticked = schedule_tick({"schedule": "seed-example"}, None)
    assert ticked["ok"]
    # `sagesaver schedule run` skips it: "matches schedules office-berlin, seed-example".
    assert ticked["actions"] == [], ticked["actions"]
    assert [s["name"] for s in ticked["skipped"]] == ["dev-bob"]


@pytest.mark.slow
def test_deleting_idle_endpoints_with_the_deployed_configuration(
    sim: Simulator, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``action: delete``: announce, then delete with a backup in the stack's ledger, calling
    only what the role grants; the policy's literal ``${team}`` survives Fn::Sub."""
    import time_machine

    from sagesaver.lambda_handlers import idle_endpoints

    chosen = policy("plain")
    outputs = create_stack(sim, "plain")
    ledger_key_as_deployed(outputs["LedgerTableName"])
    assert "ScheduleTickFunctionArn" not in outputs
    fleet.endpoint(EAST, "forgotten", tags={"owner": "${team}"}, changed=parse_time("2026-11-20"))
    fleet.endpoint(EAST, "prod-ranker", tags={"owner": "${team}"}, changed=parse_time("2026-11-20"))
    env = deployed_environment(sim, IDLE_SCAN)
    assert parse_policy(env["SAGESAVER_POLICY"]).endpoints.tags == {"owner": "${team}"}
    assert env["SAGESAVER_REGIONS"] == EAST  # the stack's region
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    sim.middleware.counts.clear()
    with time_machine.travel("2026-11-30T10:00:00Z", tick=False):
        announced = idle_endpoints({}, None)
    with time_machine.travel("2026-11-30T23:00:00Z", tick=False):
        deleted = idle_endpoints({}, None)
    assert announced["ok"] and deleted["ok"], (announced, deleted)
    assert [(e["name"], e["stage"]) for e in announced["enforcement"]] == [
        ("forgotten", "announce")
    ]
    [step] = deleted["enforcement"]
    assert (step["name"], step["outcome"]) == ("forgotten", "deleted") and step["backup_id"]
    names = [e["EndpointName"] for e in sim.client("sagemaker", EAST).list_endpoints()["Endpoints"]]
    assert names == ["prod-ranker"]
    used = set(sim.middleware.counts)
    assert {"AddTags", "DeleteEndpoint", "PutItem", "DescribeTable"} <= used
    # The backup is sealed under the stack's own ledger key (issue 29), never opened.
    assert {"DescribeKey", "Encrypt"} <= used and "Decrypt" not in used
    assert operations_are_granted(used, FUNCTIONS[IDLE_SCAN].actions_for(chosen)) == []
    items = sim.client("dynamodb", EAST).scan(TableName=outputs["LedgerTableName"])["Items"]
    assert {i["pk"]["S"] for i in items} >= {"backup", "entry"}


def test_a_policy_that_names_its_ledger_table_shares_it_with_the_stack(tmp_path: Path) -> None:
    """The team's table: the stack creates none, grants on that one, and its functions and
    every laptop running the same policy use it (so restore finds the Lambda's backups)."""
    shared = parse_policy(PLAIN + "ledger: dynamodb://eu-west-1/team-ledger\n", "shared")
    template = render_template(shared, BUCKET, KEY, list(EMAILS))
    assert resources_of(template, "AWS::DynamoDB::Table") == {}
    for function in resources_of(template, "AWS::Lambda::Function").values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["SAGESAVER_LEDGER"] == "dynamodb://eu-west-1/team-ledger"
    grants = [
        s
        for role in resources_of(template, "AWS::IAM::Role").values()
        for s in statements_of(role)
        if s.get("Sid") == "Ledger"
    ]
    table = "arn:${AWS::Partition}:dynamodb:eu-west-1:${AWS::AccountId}:table/team-ledger"
    assert grants and all(s["Resource"] == {"Fn::Sub": table} for s in grants)
    assert template["Outputs"]["LedgerTableName"]["Value"] == "team-ledger"
    from cfnlint.api import ManualArgs, lint_file

    path = tmp_path / "shared.json"
    path.write_text(json.dumps(template, indent=2))
    assert lint_file(path, ManualArgs(regions=[EAST, "eu-central-1"])) == []


def _concrete(value: Any) -> Any:
    """A role policy with CloudFormation's intrinsics resolved as in one account and region."""
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for name, concrete in {
                "${AWS::Partition}": "aws",
                "${AWS::Region}": EAST,
                "${AWS::AccountId}": "123456789012",
                "${AWS::StackName}": "sagesaver",
            }.items():
                text = text.replace(name, concrete)
            return text
        if "Ref" in value:
            return f"arn:aws:sns:{EAST}:123456789012:{value['Ref']}"
        if "Fn::GetAtt" in value:
            logical = value["Fn::GetAtt"][0]
            kinds = {
                TABLE: "dynamodb",
                "TopicKey": "kms",
                LEDGER_KEY: "kms",
                "DeadLetterQueue": "sqs",
            }
            service = kinds.get(logical, "logs" if logical.endswith("LogGroup") else "lambda")
            return {
                "dynamodb": f"arn:aws:dynamodb:{EAST}:123456789012:table/{logical}",
                "kms": f"arn:aws:kms:{EAST}:123456789012:key/{logical}",
                "sqs": f"arn:aws:sqs:{EAST}:123456789012:{logical}",
                # A log group's Arn attribute ends with ":*" (its streams).
                "logs": f"arn:aws:logs:{EAST}:123456789012:log-group:{logical}:*",
                "lambda": f"arn:aws:lambda:{EAST}:123456789012:function:{logical}",
            }[service]
        return {k: _concrete(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_parliament_finds_nothing_in_the_roles(variant: str) -> None:
    from parliament import analyze_policy_string

    template = render(VARIANTS[variant][0], **VARIANTS[variant][1])
    for logical, role in resources_of(template, "AWS::IAM::Role").items():
        for inline in role["Properties"]["Policies"]:
            document = json.dumps(_concrete(inline["PolicyDocument"]))
            findings = analyze_policy_string(document).findings
            assert findings == [], (logical, [(f.issue, f.detail) for f in findings])


def test_configurations_are_deleted_only_with_delete_config() -> None:
    kept = parse_policy("endpoints: {action: delete}", "kept")
    deleted = parse_policy("endpoints: {action: delete, delete_config: true}", "deleted")
    assert "sagemaker:DeleteEndpointConfig" in FUNCTIONS[IDLE_SCAN].actions_for(deleted)
    assert "sagemaker:DeleteEndpointConfig" not in FUNCTIONS[IDLE_SCAN].actions_for(kept)
    assert "sagemaker:DeleteEndpoint" in FUNCTIONS[IDLE_SCAN].actions_for(kept)


@pytest.mark.parametrize("endpoints", ["", "endpoints: {action: delete, tags: {team: ml}}\n"])
def test_training_jobs_are_changed_only_when_warm_pools_are_released(endpoints: str) -> None:
    reporting = parse_policy(endpoints, "reporting")
    releasing = parse_policy(endpoints + "jobs: {warm_pools: {action: release}}", "releasing")
    assert "sagemaker:UpdateTrainingJob" not in FUNCTIONS[IDLE_SCAN].actions_for(reporting)
    assert "sagemaker:UpdateTrainingJob" in FUNCTIONS[IDLE_SCAN].actions_for(releasing)
    assert FUNCTIONS[IDLE_SCAN].uses_ledger(releasing)
    template = render_template(releasing, BUCKET, KEY, list(EMAILS))
    role = resources_of(template, "AWS::IAM::Role")[f"{IDLE_SCAN}Role"]
    [grant] = [
        s
        for s in statements_of(role)
        if "sagemaker:UpdateTrainingJob" in s["Action"] and s["Effect"] == "Allow"
    ]
    assert [r["Fn::Sub"] for r in as_list(grant["Resource"])] == [
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/*"
    ]
    assert "Condition" not in grant  # the endpoints' tag selection is not the jobs'


def test_endpoints_are_changed_only_when_they_carry_the_selected_tags() -> None:
    template = render("plain")  # selects endpoints by tags: {owner: "${team}"}
    role = resources_of(template, "AWS::IAM::Role")[f"{IDLE_SCAN}Role"]
    allowing = [s for s in statements_of(role) if s["Effect"] == "Allow"]
    deleting = [s for s in allowing if "sagemaker:DeleteEndpoint" in s["Action"]]
    assert [s["Condition"] for s in deleting] == [
        {"StringEquals": {"aws:ResourceTag/owner": "${$}{team}"}}  # a literal $ in IAM
    ]
    tagging_elsewhere = [
        r["Fn::Sub"]
        for s in allowing
        if "sagemaker:AddTags" in s["Action"] and "Condition" not in s
        for r in s["Resource"]
    ]
    assert tagging_elsewhere and all(r.endswith(":endpoint-config/*") for r in tagging_elsewhere)
