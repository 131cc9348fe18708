"""The organisation stack (`deploy render --organization`, issue 32): the state machine is the
contract's, state by state; the template lints clean in aws, aws-cn and aws-us-gov, its
definition too as CloudFormation resolves it; its roles grant what the run needs and nothing
more (evaluated with tests/iam_evaluator.py); the schedule starts the state machine; bad
options exit 2."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.errors import InputError
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.deploy.organisation import (
    FUNCTION_IDS,
    organisation_template,
    state_machine_definition,
)
from sagesaver.deploy.state_machine import HANDLERS
from tests.conftest import Cli
from tests.iam_evaluator import Request, decide

ORG = "o-a1b2c3d4e5"
ACCOUNT = "123456789012"
MEMBER = "444455556666"
STACK = "sagesaver"
# Deleting endpoints and releasing warm pools, publishing to a chat channel too.
ACTING = """
regions: [us-east-1, eu-west-1]
endpoints: {action: delete}
jobs:
  warm_pools: {action: release}
notify:
  channels:
    - {type: slack, webhook: "ssm:/sagesaver/slack"}
"""
CHINA = """
regions: [cn-north-1, cn-northwest-1]
endpoints: {action: delete}
"""
EXPRESS = "arn:*:states:*:*:express:*:*:*"
VARIANTS: dict[str, tuple[str, str, str]] = {
    "aws": (ACTING, "us-east-1", "aws"),
    "aws-cn": (CHINA, "cn-north-1", "aws-cn"),
    "aws-us-gov": ("regions: [us-gov-west-1]\n", "us-gov-west-1", "aws-us-gov"),
}
# The contract's Retry, on every Lambda task.
CONTRACT_RETRY = [
    {
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
            "States.Timeout",
        ],
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2.0,
        "JitterStrategy": "FULL",
    },
    {
        "ErrorEquals": ["Transient"],
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2.0,
        "JitterStrategy": "FULL",
    },
]
# Which function each Task state invokes, by the contract.
TASK_FUNCTIONS = {
    "ListItems": "list",
    "PlanItem": "plan",
    "RecordPlanFailure": "record_failure",
    "Announce": "announce",
    "ActItem": "act",
    "RecordActFailure": "record_failure",
    "Summarise": "summarise",
}


def arns(partition: str = "aws", region: str = "us-east-1") -> dict[str, str]:
    """Plain function ARNs, as the simulator registers them."""
    return {
        step: f"arn:{partition}:lambda:{region}:{ACCOUNT}:function:sagesaver-{step}"
        for step in HANDLERS
    }


def render(variant: str, **options: Any) -> dict[str, Any]:
    text, region, _ = VARIANTS[variant]
    arguments: dict[str, Any] = {"emails": ["ops@example.com"], "region": region, **options}
    return organisation_template(parse_policy(text, variant), **arguments)


# --- CloudFormation's intrinsics, resolved as in one account, region and stack ---------------


class Resolver:
    """Resolves Ref, Fn::GetAtt and Fn::Sub of ``template`` as CloudFormation would in
    ``region`` of ``partition``, in account ACCOUNT, for the stack STACK, with the parameters'
    defaults (``parameters`` override them)."""

    def __init__(
        self, template: dict[str, Any], partition: str, region: str, **parameters: str
    ) -> None:
        self.template = template
        self.partition = partition
        self.region = region
        self.values: dict[str, str] = {
            "AWS::Partition": partition,
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
        }
        for name, parameter in template.get("Parameters", {}).items():
            if "Default" in parameter:
                self.values[name] = str(parameter["Default"])
        self.values.update(parameters)

    def _arn(self, service: str, resource: str, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:{self.partition}:{service}:{where}:{ACCOUNT}:{resource}"

    def ref(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        resource = self.template["Resources"][name]
        kind = resource["Type"]
        if kind == "AWS::Lambda::Function":
            return str(self.resolve(resource["Properties"]["FunctionName"]))
        if kind == "AWS::S3::Bucket":
            return f"{STACK}-{name.lower()}-1a2b3c4d"
        if kind == "AWS::StepFunctions::StateMachine":
            return self.attribute(name, "Arn")
        if kind == "AWS::SNS::Topic":
            return self._arn("sns", name)
        return f"{STACK}-{name}-X1Y2"

    def attribute(self, name: str, attribute: str) -> str:
        assert attribute == "Arn", attribute
        resource = self.template["Resources"][name]
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Lambda::Function":
            return self._arn("lambda", f"function:{self.ref(name)}")
        if kind == "AWS::StepFunctions::StateMachine":
            machine = self.resolve(properties["StateMachineName"])
            return self._arn("states", f"stateMachine:{machine}")
        if kind == "AWS::Logs::LogGroup":
            return self._arn("logs", f"log-group:{self.resolve(properties['LogGroupName'])}:*")
        if kind == "AWS::IAM::Role":
            return f"arn:{self.partition}:iam::{ACCOUNT}:role/{STACK}-{name}-X1Y2"
        if kind == "AWS::S3::Bucket":
            return f"arn:{self.partition}:s3:::{self.ref(name)}"
        services = {
            "AWS::DynamoDB::Table": ("dynamodb", "table/"),
            "AWS::KMS::Key": ("kms", "key/"),
            "AWS::SQS::Queue": ("sqs", ""),
        }
        service, prefix = services[kind]
        return self._arn(service, f"{prefix}{STACK}-{name}-X1Y2")

    def sub(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name.endswith(".Arn"):
                return self.attribute(name.removesuffix(".Arn"), "Arn")
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"}:
                return self.ref(value["Ref"])
            if set(value) == {"Fn::GetAtt"}:
                return self.attribute(*value["Fn::GetAtt"])
            if set(value) == {"Fn::Sub"}:
                return self.sub(value["Fn::Sub"])
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def resolver(variant: str, template: dict[str, Any], **parameters: str) -> Resolver:
    _, region, partition = VARIANTS[variant]
    return Resolver(template, partition, region, **{"OrganizationId": ORG, **parameters})


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def role_document(template: dict[str, Any], role: str, resolve: Resolver) -> dict[str, Any]:
    [inline] = template["Resources"][role]["Properties"]["Policies"]
    document: dict[str, Any] = resolve.resolve(inline["PolicyDocument"])
    return document


def deployed_definition(template: dict[str, Any], resolve: Resolver) -> str:
    """The state machine's definition text as CloudFormation hands it to Step Functions."""
    [machine] = resources_of(template, "AWS::StepFunctions::StateMachine").values()
    text: str = resolve.resolve(machine["Properties"]["DefinitionString"])
    return text


# --- the definition: the contract's states ------------------------------------------------


def scopes(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The top-level workflow and every Map's item processor."""
    yield definition
    for state in definition["States"].values():
        if "ItemProcessor" in state:
            yield from scopes(state["ItemProcessor"])


def targets(state: dict[str, Any]) -> list[str]:
    found = [state[k] for k in ("Next", "Default") if k in state]
    found += [c["Next"] for c in state.get("Choices", [])]
    found += [c["Next"] for c in state.get("Catch", [])]
    return found


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_every_transition_names_a_state_and_every_state_is_reachable(partition: str) -> None:
    definition = state_machine_definition(partition, arns(partition), 20, 10)
    for scope in scopes(definition):
        states = scope["States"]
        assert scope["StartAt"] in states
        for name, state in states.items():
            assert set(targets(state)) <= set(states), name
            ends = state.get("End") is True or state["Type"] in ("Fail", "Succeed")
            assert ends != bool(state.get("Next") or state["Type"] == "Choice"), name
        reached, frontier = set(), [scope["StartAt"]]
        while frontier:
            name = frontier.pop()
            if name not in reached:
                reached.add(name)
                frontier += targets(states[name])
        assert reached == set(states)


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_each_task_invokes_the_contracts_function(partition: str) -> None:
    functions = arns(partition)
    definition = state_machine_definition(partition, functions, 20, 10)
    tasks = {
        name: state
        for scope in scopes(definition)
        for name, state in scope["States"].items()
        if state["Type"] == "Task"
    }
    assert set(tasks) == set(TASK_FUNCTIONS)
    for name, task in tasks.items():
        assert task["Resource"] == f"arn:{partition}:states:::lambda:invoke"
        assert task["Parameters"]["FunctionName"] == functions[TASK_FUNCTIONS[name]], name
        assert task["Retry"] == CONTRACT_RETRY, name
        assert task["TimeoutSeconds"] == 900, name
    for name in ("Plan", "Act"):
        reader = definition["States"][name]["ItemReader"]
        assert reader["Resource"] == f"arn:{partition}:states:::s3:getObject"


def test_the_states_carry_the_contracts_paths() -> None:
    definition = state_machine_definition("aws", arns(), 7, 15)
    states = definition["States"]
    assert definition["StartAt"] == "ListItems"
    assert list(states) == ["ListItems", "Plan", "Announce", "AnyActs", "Act", "Summarise"]
    listing = states["ListItems"]
    assert listing["Parameters"]["Payload"] == {
        "execution.$": "$$.Execution.Name",
        "started.$": "$$.Execution.StartTime",
        "input.$": "$",
    }
    assert listing["ResultSelector"] == {
        f"{k}.$": f"$.Payload.{k}"
        for k in ("run_id", "now", "bucket", "prefix", "items_key", "items")
    }
    assert (listing["ResultPath"], listing["Next"]) == ("$.run", "Plan")
    for name, key, stage, then in (
        ("Plan", "$.run.items_key", "plan", "Announce"),
        ("Act", "$.announce.act_key", "act", "Summarise"),
    ):
        fan = states[name]
        assert fan["ItemProcessor"]["ProcessorConfig"] == {
            "Mode": "DISTRIBUTED",
            "ExecutionType": "STANDARD",
        }
        assert fan["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
        assert fan["ItemReader"]["Parameters"] == {"Bucket.$": "$.run.bucket", "Key.$": key}
        assert fan["ItemSelector"] == {
            "account.$": "$$.Map.Item.Value.account",
            "region.$": "$$.Map.Item.Value.region",
            "run.$": "$.run",
        }
        assert (fan["MaxConcurrency"], fan["ToleratedFailurePercentage"]) == (7, 15)
        assert fan["ResultPath"] is None and fan["Next"] == then
        assert fan["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{stage}_failed", "Next": "Summarise"}
        ]
        item = fan["ItemProcessor"]["States"]
        title = stage.capitalize()
        assert item[f"{title}Item"]["Parameters"]["Payload.$"] == "$"
        assert item[f"{title}Item"]["Catch"] == [
            {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": "$.error",
                "Next": f"Record{title}Failure",
            }
        ]
        assert item[f"Record{title}Failure"]["Parameters"]["Payload"] == {
            "stage": stage,
            "account.$": "$.account",
            "region.$": "$.region",
            "run.$": "$.run",
            "error.$": "$.error",
        }
        assert item[f"{title}ItemFailed"] == {
            "Type": "Fail",
            "Error": "SageSaver.ItemFailed",
            "Cause": f"recorded under failures/{stage}/",
        }
    # a child's output is a few bytes: the Map gathers 3,000+ of them under 256 KiB
    assert states["Plan"]["ItemProcessor"]["States"]["PlanItem"]["ResultSelector"] == {
        "ok.$": "$.Payload.ok",
    }
    assert states["Act"]["ItemProcessor"]["States"]["ActItem"]["ResultSelector"] == {
        "acted.$": "$.Payload.acted",
        "failed.$": "$.Payload.failed",
    }
    announce = states["Announce"]
    assert announce["Parameters"]["Payload"] == {"run.$": "$.run"}
    assert (announce["ResultPath"], announce["Next"]) == ("$.announce", "AnyActs")
    assert announce["Catch"][0]["ResultPath"] == "$.announce_failed"
    assert states["AnyActs"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.announce.acts", "NumericGreaterThan": 0, "Next": "Act"}],
        "Default": "Summarise",
    }
    summary = states["Summarise"]
    assert summary["Parameters"]["Payload.$"] == "$"
    assert (summary["ResultPath"], summary["OutputPath"], summary["End"]) == (
        "$.summary",
        "$.summary",
        True,
    )
    assert set(summary["ResultSelector"]) == {
        f"{k}.$" for k in ("summary_key", "complete", "missed", "missed_count", "actions", "errors")
    }


def test_a_definition_without_every_function_is_refused() -> None:
    functions = arns()
    del functions["summarise"]
    with pytest.raises(ValueError, match="summarise"):
        state_machine_definition("aws", functions, 20, 10)


# --- the template: cfn-lint ---------------------------------------------------------------


def lint(template: dict[str, Any], region: str, folder: Path) -> list[str]:
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    path = folder / "organisation.json"
    path.write_text(json.dumps(template, indent=2))
    return [f"{m.rule.id} {m.message}" for m in lint_file(path, ManualArgs(regions=[region]))]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cfn_lint_finds_nothing(variant: str, tmp_path: Path) -> None:
    template = render(variant, org_id=ORG)
    assert lint(template, VARIANTS[variant][1], tmp_path) == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cfn_lint_validates_the_definition_as_deployed(variant: str, tmp_path: Path) -> None:
    """cfn-lint skips a definition under Fn::Sub: the text CloudFormation resolves is linted
    (the Map settings' parameters are then unused, all it may say)."""
    template = render(variant)
    resolve = resolver(variant, template)
    [name] = resources_of(template, "AWS::StepFunctions::StateMachine")
    properties = template["Resources"][name]["Properties"]
    properties["DefinitionString"] = deployed_definition(template, resolve)
    unused = [
        "W2001 Parameter MaxConcurrency not used.",
        "W2001 Parameter ToleratedFailurePercentage not used.",
    ]
    found = lint(template, VARIANTS[variant][1], tmp_path)
    partition = VARIANTS[variant][2]
    if partition != "aws":
        # cfn-lint 1.58's ASL schema takes a Task's Resource for arn:aws: only; in China the
        # integration is arn:aws-cn:states:::lambda:invoke (arn:aws-us-gov:... in GovCloud).
        # That finding, on each of the seven Tasks, is all it may add.
        gap = f"'arn:{partition}:states:::lambda:invoke' does not match '^arn:aws:"
        schema_gap = [m for m in found if gap in m]
        assert len(schema_gap) == len(TASK_FUNCTIONS)
        assert all(m.startswith("E3601") and "Resource" in m for m in schema_gap)
        found = [m for m in found if m not in schema_gap]
    assert found == unused
    # ...and it would say so of a misspelt field in an item's state, or a start at no state.
    broken = json.loads(properties["DefinitionString"])
    broken["States"]["Plan"]["ItemProcessor"]["States"]["PlanItem"]["ResultSelecter"] = {}
    broken["StartAt"] = "Nowhere"
    properties["DefinitionString"] = json.dumps(broken)
    errors = [
        m
        for m in lint(template, VARIANTS[variant][1], tmp_path)
        if m.startswith("E3601") and "lambda:invoke' does not match" not in m
    ]
    assert len(errors) == 2 and "Nowhere" in errors[0] + errors[1]
    assert "ResultSelecter" in errors[0] + errors[1]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_deployed_definition_is_state_machine_definition_with_numbers(variant: str) -> None:
    template = render(variant)
    resolve = resolver(variant, template, MaxConcurrency="35", ToleratedFailurePercentage="5")
    deployed = json.loads(deployed_definition(template, resolve))
    functions = {step: resolve.attribute(FUNCTION_IDS[step], "Arn") for step in HANDLERS}
    _, _, partition = VARIANTS[variant]
    assert deployed == state_machine_definition(partition, functions, 35, 5)
    assert isinstance(deployed["States"]["Act"]["MaxConcurrency"], int)


# --- the template: functions, bucket, schedule, alarms, parameters --------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_six_functions_share_one_environment(variant: str) -> None:
    template = render(variant)
    functions = resources_of(template, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTION_IDS.values())
    environments = []
    for step, handler in HANDLERS.items():
        properties = functions[FUNCTION_IDS[step]]["Properties"]
        assert properties["Handler"] == f"sagesaver.organisation_handlers.{handler}"
        assert properties["Timeout"] == 900
        assert "DeadLetterConfig" not in properties  # invoked synchronously only
        environments.append(properties["Environment"])
    assert all(e == environments[0] for e in environments)
    variables = environments[0]["Variables"]
    assert variables["SAGESAVER_MEMBER_ROLE"] == {"Ref": "MemberRoleName"}
    assert variables["SAGESAVER_RUN_BUCKET"] == {"Ref": "RunBucket"}
    assert variables["SAGESAVER_EXTERNAL_ID"] == {
        "Fn::If": ["HasExternalId", {"Ref": "ExternalId"}, {"Ref": "AWS::NoValue"}]
    }
    assert variables["SAGESAVER_REGIONS"] == ",".join(
        parse_policy(VARIANTS[variant][0], variant).regions
    )
    # Without regions in the policy, the list function reads the enabled regions.
    assert (
        "SAGESAVER_REGIONS"
        not in (
            organisation_template(Policy())["Resources"]["OrgListFunction"]["Properties"][
                "Environment"
            ]["Variables"]
        )
    )


def test_the_run_bucket_is_private_encrypted_tls_only_and_expires_runs() -> None:
    template = render("aws")
    bucket = template["Resources"]["RunBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert (rule["Prefix"], rule["ExpirationInDays"], rule["Status"]) == ("runs/", 30, "Enabled")
    [deny] = template["Resources"]["RunBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_schedule_starts_the_state_machine(variant: str) -> None:
    template = render(variant)
    resolve = resolver(variant, template)
    [schedule] = resources_of(template, "AWS::Scheduler::Schedule").values()
    target = schedule["Properties"]["Target"]
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    machine = resolve.attribute("OrganisationStateMachine", "Arn")
    assert resolve.resolve(target["Arn"]) == machine
    assert json.loads(target["Input"]) == {}
    document = role_document(template, target["RoleArn"]["Fn::GetAtt"][0], resolve)
    assert decide(document, Request("states:StartExecution", machine)) == "allow"
    other = machine.replace("sagesaver-organisation", "someone-else")
    assert decide(document, Request("states:StartExecution", other)) == "implicit-deny"
    assert decide(document, Request("lambda:InvokeFunction", "*")) == "implicit-deny"


def test_alarms_tell_the_topic_of_failed_and_timed_out_runs() -> None:
    template = render("aws")
    alarms = resources_of(template, "AWS::CloudWatch::Alarm").values()
    states = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in alarms
        if a["Properties"]["Namespace"] == "AWS/States"
    }
    assert set(states) == {"ExecutionsFailed", "ExecutionsTimedOut"}
    for alarm in states.values():
        assert alarm["Dimensions"] == [
            {"Name": "StateMachineArn", "Value": {"Ref": "OrganisationStateMachine"}}
        ]
        assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]


def test_parameters_and_their_defaults() -> None:
    template = render("aws", org_id=ORG, member_role_name="ml/SageSaverMember")
    parameters = template["Parameters"]
    assert parameters["OrganizationId"]["Default"] == ORG
    assert parameters["MemberRoleName"]["Default"] == "ml/SageSaverMember"
    assert parameters["ExternalId"]["NoEcho"] is True and parameters["ExternalId"]["Default"] == ""
    assert parameters["MaxConcurrency"]["Default"] == 20
    assert parameters["ToleratedFailurePercentage"]["Default"] == 10
    assert "Default" not in render("aws")["Parameters"]["OrganizationId"]  # asked at deployment


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"org_id": "o-short"}, "--org-id o-short"),
        ({"member_role_name": "bad*name"}, "--member-role-name 'bad*name'"),
        ({"member_role_name": "path/"}, "--member-role-name 'path/'"),
        ({"region": "cn-north-1"}, "several partitions"),
        ({"code_bucket": " "}, "code bucket"),
    ],
)
def test_bad_arguments_are_input_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        render("aws", **options)


def test_a_local_price_file_is_refused() -> None:
    with pytest.raises(InputError, match="local file"):
        organisation_template(parse_policy("prices: prices.json", "local"))


# --- IAM ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_state_machine_may_invoke_exactly_the_six_functions(variant: str) -> None:
    template = render(variant)
    resolve = resolver(variant, template)
    document = role_document(template, "OrganisationStateMachineRole", resolve)
    lambdas = [
        s for s in document["Statement"] if any(str(a).startswith("lambda:") for a in s["Action"])
    ]
    assert [s["Action"] for s in lambdas] == [["lambda:InvokeFunction"]]
    granted = {resolve.attribute(FUNCTION_IDS[step], "Arn") for step in HANDLERS}
    assert set(lambdas[0]["Resource"]) == granted and len(granted) == 6
    for arn in granted:
        assert decide(document, Request("lambda:InvokeFunction", arn)) == "allow"
        assert decide(document, Request("lambda:InvokeFunction", f"{arn}:1")) == "implicit-deny"
    _, region, partition = VARIANTS[variant]
    stranger = f"arn:{partition}:lambda:{region}:{ACCOUNT}:function:{STACK}-idle-scan"
    assert decide(document, Request("lambda:InvokeFunction", stranger)) == "implicit-deny"
    # The Distributed Maps: their child executions, their items.
    machine = resolve.attribute("OrganisationStateMachine", "Arn")
    child = machine.replace(":stateMachine:", ":execution:") + "/Plan-1234:9f8e7d"
    assert decide(document, Request("states:StartExecution", machine)) == "allow"
    for action in ("states:DescribeExecution", "states:StopExecution"):
        assert decide(document, Request(action, child)) == "allow"
        assert decide(document, Request(action, child.replace("sagesaver-", "x-"))) == (
            "implicit-deny"
        )
    bucket = f"arn:{partition}:s3:::{resolve.ref('RunBucket')}"
    assert decide(document, Request("s3:GetObject", f"{bucket}/runs/r1/items.json")) == "allow"
    assert decide(document, Request("s3:GetObject", f"{bucket}/other")) == "implicit-deny"
    assert decide(document, Request("s3:PutObject", f"{bucket}/runs/r1/x")) == "implicit-deny"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_plan_function_assumes_the_member_role_only_inside_the_organisation(
    variant: str,
) -> None:
    template = render(variant, org_id=ORG)
    resolve = resolver(variant, template)
    plan_role = template["Resources"]["OrgPlanFunction"]["Properties"]["Role"]
    role = plan_role["Fn::GetAtt"][0]
    document = role_document(template, role, resolve)
    _, _, partition = VARIANTS[variant]
    member = f"arn:{partition}:iam::{MEMBER}:role/SageSaverExecution"

    def assume(arn: str, **context: str) -> str:
        return decide(document, Request("sts:AssumeRole", arn, context))

    assert assume(member, **{"aws:ResourceOrgID": ORG}) == "allow"
    assert assume(member, **{"aws:ResourceOrgID": "o-z9y8x7w6v5"}) == "implicit-deny"
    assert assume(member) == "implicit-deny"  # no organisation: not a member
    other = f"arn:{partition}:iam::{MEMBER}:role/Admin"
    assert assume(other, **{"aws:ResourceOrgID": ORG}) == "implicit-deny"
    # The act function runs as the same role (the member roles trust one caller); no other
    # function may assume anything.
    assert template["Resources"]["OrgActFunction"]["Properties"]["Role"] == plan_role
    for name in resources_of(template, "AWS::IAM::Role"):
        if name != role:
            inline = role_document(template, name, resolve)
            assert decide(inline, Request("sts:AssumeRole", member, {})) == "implicit-deny"
    assert template["Outputs"]["FanOutRoleArn"]["Value"] == {"Fn::GetAtt": [role, "Arn"]}


def test_the_functions_roles_reach_the_runs_ledger_and_topic_as_needed() -> None:
    template = render("aws")
    resolve = resolver("aws", template)
    bucket = f"arn:aws:s3:::{resolve.ref('RunBucket')}"
    table = resolve.attribute("LedgerTable", "Arn")
    topic = resolve.ref("NotificationTopic")
    roles = {
        step: template["Resources"][FUNCTION_IDS[step]]["Properties"]["Role"]["Fn::GetAtt"][0]
        for step in HANDLERS
    }
    for step, role in roles.items():
        document = role_document(template, role, resolve)
        for action in ("s3:GetObject", "s3:PutObject"):
            assert decide(document, Request(action, f"{bucket}/runs/r1/x.json")) == "allow"
            assert decide(document, Request(action, f"{bucket}/elsewhere")) == "implicit-deny"
        listing = Request("s3:ListBucket", bucket, {"s3:prefix": "runs/r1/"})
        assert decide(document, listing) == "allow"
        assert decide(document, Request("s3:ListBucket", bucket, {"s3:prefix": ""})) != "allow"
        assert decide(document, Request("dynamodb:PutItem", table)) == "allow"
        publishes = decide(document, Request("sns:Publish", topic))
        assert publishes == ("allow" if step in ("announce", "summarise") else "implicit-deny")
        for action in (
            "organizations:ListAccounts",
            "organizations:ListAccountsForParent",
            "organizations:ListOrganizationalUnitsForParent",  # OUs under those named
        ):
            lists = decide(document, Request(action, "*"))
            assert lists == ("allow" if step == "list" else "implicit-deny")
        logs = resolve.attribute(f"{FUNCTION_IDS[step]}LogGroup", "Arn")
        assert decide(document, Request("logs:PutLogEvents", logs)) == "allow"


# --- the CLI ------------------------------------------------------------------------------


def test_deploy_render_organization(cli: Cli, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ACTING)
    result = cli(
        "deploy", "render", "--organization", "--policy", str(policy), "--region", "us-east-1",
        "--org-id", ORG, "--member-role-name", "SageSaverMember", "--email", "ops@example.com",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == organisation_template(
        parse_policy(ACTING, "acting"),
        emails=["ops@example.com"],
        region="us-east-1",
        org_id=ORG,
        member_role_name="SageSaverMember",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--organization", "--member-role"], "--organization does not take --member-role"),
        (
            ["--organization", "--caller-role", "arn:aws:iam::111122223333:role/x"],
            "--organization does not take --caller-role",
        ),
        (["--organization", "--external-id", "abc-123"], "ExternalId parameter"),
        (["--organization", "--role-name", "Other"], "--member-role-name"),
        (["--member-role-name", "SageSaverMember"], "--member-role-name goes with --organization"),
        (["--organization", "--org-id", "org-1"], "--org-id org-1"),
        (["--organization", "--member-role-name", "a*b"], "--member-role-name 'a*b'"),
        (["--organization", "--region", "cn-north-1", "--policy", "{policy}"], "partitions"),
    ],
)
def test_bad_organization_options_exit_2(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ACTING)
    result = cli("deploy", "render", *[a.replace("{policy}", str(policy)) for a in args])
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and result.stdout == ""


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_parliament_finds_nothing_in_the_roles(variant: str) -> None:
    from parliament import analyze_policy_string  # type: ignore[import-untyped]

    template = render(variant)
    resolve = resolver(variant, template)
    for name in resources_of(template, "AWS::IAM::Role"):
        document = json.dumps(role_document(template, name, resolve))
        findings = [(f.issue, f.detail) for f in analyze_policy_string(document).findings]
        if name == "OrganisationStateMachineRole":
            # parliament's data lists DescribeExecution as needing an express execution too
            # (it takes either kind); the children of these Maps are STANDARD executions.
            express = [{"action": "states:DescribeExecution", "required_format": EXPRESS}]
            findings.remove(("RESOURCE_MISMATCH", express))
        assert findings == [], name
