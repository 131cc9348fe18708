"""The README's deploy steps, followed literally on the simulator.

The commands are read from the README's code block and run as they are written: SageSaver's
own commands through its CLI, ``aws s3 cp`` through the real AWS CLI, ``> file`` as a
redirection. Where the README says "--apply executes it", the same line runs again with
``--apply``. The stack that results must hold everything the template promises, and its
handlers, configured only by what the stack set, must run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import time_machine

import tests.moto_cloudformation  # noqa: F401  (Scheduler, subscriptions, alarms in stacks)
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.deploy.package import MANIFEST
from tests.conftest import Cli
from tests.shifted_clock import child_env

README = Path(__file__).resolve().parents[2] / "README.md"
EAST = "us-east-1"
POLICY = """\
regions: [us-east-1]
endpoints: {idle_hours: 24}
schedules:
  seed-example:
    start: cron(0 7 ? * MON-FRI *)
    stop: cron(0 21 ? * MON-FRI *)
    name_contains: dev-
"""


def readme_deploy_commands() -> list[str]:
    """The commands of the README's serverless code block, continuation lines joined."""
    section = README.read_text(encoding="utf-8").split("## Serverless", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        command = line.split("#", 1)[0].strip()
        if command:
            commands.append(" ".join(command.split()))
    return commands


def test_the_readme_block_is_the_one_this_test_follows() -> None:
    commands = readme_deploy_commands()
    assert [c.split()[:3] for c in commands] == [
        ["sagesaver", "deploy", "package"],
        ["aws", "s3", "cp"],
        ["sagesaver", "deploy", "render"],
        ["sagesaver", "deploy", "apply"],
        ["sagesaver", "deploy", "delete"],
    ]


def run_line(command: str, cli: Cli, sim: Simulator, cwd: Path) -> str:
    """Run one README line in ``cwd``; return its stdout."""
    words = shlex.split(command)
    target = None
    if ">" in words:
        words, target = words[: words.index(">")], words[words.index(">") + 1]
    if words[0] == "aws":
        aws_cli = Path(sys.executable).parent / "aws"
        done = subprocess.run(
            [str(aws_cli), *words[1:]],
            cwd=cwd,
            env=child_env({"PATH": "/usr/bin:/bin", "HOME": str(cwd), **sim.env(EAST)}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (command, done.stderr)
        output = done.stdout
    else:
        assert words[0] == "sagesaver"
        result = cli(*words[1:])
        assert result.exit_code == 0, (command, result.stdout, result.stderr)
        output = result.stdout
    if target is not None:
        (cwd / target).write_text(output, encoding="utf-8")
    return output


def test_the_readme_deploy_steps_make_a_stack_whose_handlers_run(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY)
    sim.client("s3", EAST).create_bucket(Bucket="my-artifacts")  # the README's bucket, assumed
    package, upload, render, apply, delete = readme_deploy_commands()

    run_line(package, cli, sim, tmp_path)
    built = tmp_path / "sagesaver-lambda.zip"
    manifest = json.loads(zipfile.ZipFile(built).read(MANIFEST))
    assert manifest["architecture"] == "arm64"

    run_line(upload, cli, sim, tmp_path)
    stored = sim.client("s3", EAST).get_object(Bucket="my-artifacts", Key="sagesaver-lambda.zip")
    assert stored["Body"].read() == built.read_bytes()

    run_line(render, cli, sim, tmp_path)
    template = json.loads((tmp_path / "sagesaver.json").read_text())
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert {tuple(f["Properties"]["Architectures"]) for f in functions} == {("arm64",)}
    assert {f["Properties"]["Runtime"] for f in functions} == {manifest["runtime"]}

    preview = run_line(apply, cli, sim, tmp_path)
    assert "CREATE stack sagesaver" in preview and "Dry run" in preview
    cloudformation = sim.client("cloudformation", EAST)
    assert not [
        s
        for s in cloudformation.list_stacks()["StackSummaries"]
        if s["StackName"] == "sagesaver" and s["StackStatus"] == "CREATE_COMPLETE"
    ]
    applied = run_line(f"{apply} --apply", cli, sim, tmp_path)  # "--apply executes it"
    assert "Stack sagesaver: CREATE_COMPLETE" in applied

    [stack] = cloudformation.describe_stacks(StackName="sagesaver")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    topic = outputs["TopicArn"]
    subscriptions = sim.client("sns", EAST).list_subscriptions_by_topic(TopicArn=topic)
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions["Subscriptions"]] == [
        ("email", "ml-platform@example.com")
    ]
    alarms = sim.client("cloudwatch", EAST).describe_alarms()["MetricAlarms"]
    assert sorted(a["MetricName"] for a in alarms) == [
        "ApproximateNumberOfMessagesVisible",  # the dead-letter queue's depth
        "Errors",
        "Errors",
        "Throttles",
        "Throttles",
    ]
    assert all(a["AlarmActions"] == [topic] for a in alarms)
    schedules = sim.client("scheduler", EAST).list_schedules()["Schedules"]
    assert len(schedules) == 3  # the hourly scan, the weekday start and the weekday stop

    # The handlers, configured only by what the stack set, reach its topic and ledger.
    lambdas = sim.client("lambda", EAST)
    configuration = lambdas.get_function_configuration(FunctionName="sagesaver-idle-scan")
    # (moto's CloudFormation drops a function's Architectures: the template's are checked above)
    assert configuration["Runtime"] == manifest["runtime"]
    for key, value in configuration["Environment"]["Variables"].items():
        monkeypatch.setenv(key, value)
    fleet.endpoint(EAST, "forgotten", changed=stack["CreationTime"].replace(year=2020))
    from sagesaver.lambda_handlers import idle_endpoints

    with time_machine.travel(stack["CreationTime"], tick=False):
        scanned = idle_endpoints({}, None)
    assert scanned["ok"], scanned
    assert [e["name"] for e in scanned["idle_endpoints"]] == ["forgotten"]
    assert len(fleet.published(topic)) == 1

    deleted = run_line(delete, cli, sim, tmp_path)
    assert "DELETE_COMPLETE" in deleted
    table = outputs["LedgerTableName"]
    assert sim.client("dynamodb", EAST).describe_table(TableName=table)["Table"]  # kept
