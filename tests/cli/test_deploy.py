"""`sagesaver deploy render|apply|delete` against the moto server."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from sagesaver.demo.simulator import Simulator
from sagesaver.deploy.package import MANIFEST, RUNTIME
from tests.conftest import Cli
from tests.deploy.test_template import supported_by_moto


def test_render_then_preview_apply_and_delete(cli: Cli, sim: Simulator, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "schedules:\n  office:\n    timezone: Europe/Berlin\n"
        "    periods: [{begin: '07:00', end: '19:00'}]\n    name_contains: dev-\n"
    )
    rendered = cli(
        "deploy",
        "render",
        "--policy",
        str(policy),
        "--code-bucket",
        "artifacts",
        "--email",
        "ops@example.com",
    )
    assert rendered.exit_code == 0, rendered.stderr
    template, dropped = supported_by_moto(json.loads(rendered.stdout))
    assert dropped <= {
        "AWS::Scheduler::Schedule",
        "AWS::SNS::Subscription",
        "AWS::CloudWatch::Alarm",
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("sagesaver/__init__.py", "")
    s3 = sim.client("s3", "us-east-1")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="sagesaver-lambda.zip", Body=archive.getvalue())
    cloudformation = sim.client("cloudformation", "us-east-1")

    preview = cli("deploy", "apply", "--template", str(path), "--stack-name", "saver")
    assert preview.exit_code == 0, preview.stdout + preview.stderr
    assert "CREATE stack saver (us-east-1)" in preview.stdout
    assert "Add" in preview.stdout and "LedgerTable" in preview.stdout
    assert "Dry run" in preview.stdout
    stacks = cloudformation.list_stacks()["StackSummaries"]
    assert all(
        s["StackStatus"] in ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS")
        for s in stacks
        if s["StackName"] == "saver"
    )

    applied = cli("deploy", "apply", "--template", str(path), "--stack-name", "saver", "--apply")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "Stack saver: CREATE_COMPLETE" in applied.stdout
    assert (
        cloudformation.describe_stacks(StackName="saver")["Stacks"][0]["StackStatus"]
        == "CREATE_COMPLETE"
    )

    deleted = cli("deploy", "delete", "--stack-name", "saver", "--apply")
    assert deleted.exit_code == 0, deleted.stdout + deleted.stderr
    assert "DELETE_COMPLETE" in deleted.stdout


def test_bad_deploy_input_exits_2(cli: Cli, sim: Simulator, tmp_path: Path) -> None:
    for args, message in (
        (["deploy", "render", "--email", "not-an-address"], "not-an-address"),
        (["deploy", "render", "--architecture", "sparc"], "sparc"),
        (["deploy", "apply", "--stack-name", "bad_name!"], "--stack-name 'bad_name!'"),
        (
            ["deploy", "apply", "--template", str(tmp_path / "none.json")],
            "cannot read the template",
        ),
        (["deploy", "render", "--reserved-concurrency", "0"], "reserved concurrency 0"),
        (["deploy", "apply", "--operator", "alice"], "operator 'alice'"),
        (["deploy", "apply", "--code-signing-config", "csc-1"], "code signing configuration"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr
    assert "CreateChangeSet" not in sim.middleware.counts


def _package(path: Path, architecture: str, runtime: str = RUNTIME) -> Path:
    """A zip carrying the manifest ``deploy package`` writes (the rest does not matter here)."""
    with zipfile.ZipFile(path, "w") as archive:
        manifest = {"architecture": architecture, "runtime": runtime}
        archive.writestr(MANIFEST, json.dumps(manifest))
    return path


def test_render_takes_architecture_and_runtime_from_the_package(cli: Cli, tmp_path: Path) -> None:
    package = _package(tmp_path / "arm.zip", "arm64")
    result = cli("deploy", "render", "--package", str(package))
    assert result.exit_code == 0, result.stderr
    functions = [
        r["Properties"]
        for r in json.loads(result.stdout)["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    assert {(f["Architectures"][0], f["Runtime"]) for f in functions} == {("arm64", RUNTIME)}

    mismatch = cli("deploy", "render", "--package", str(package), "--architecture", "x86_64")
    assert mismatch.exit_code == 2
    assert "was built for arm64" in mismatch.stderr and mismatch.stdout == ""
    (tmp_path / "junk.zip").write_text("junk")
    junk = cli("deploy", "render", "--package", str(tmp_path / "junk.zip"))
    assert junk.exit_code == 2 and "not a SageSaver Lambda package" in junk.stderr


def test_render_pins_signs_reserves_and_names_the_ledgers_operators(cli: Cli) -> None:
    signing = "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdef0"
    operator = "arn:aws:iam::123456789012:role/ml-platform-admin"
    result = cli(
        "deploy", "render", "--region", "us-east-1", "--code-version", "v7",
        "--code-signing-config", signing, "--reserved-concurrency", "2", "--operator", operator,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    template = json.loads(result.stdout)
    function = template["Resources"]["IdleScanFunction"]["Properties"]
    assert function["Code"]["S3ObjectVersion"] == "v7"
    assert function["CodeSigningConfigArn"] == signing
    assert function["ReservedConcurrentExecutions"] == 2
    key = template["Resources"]["LedgerKey"]["Properties"]["KeyPolicy"]
    [use] = [s for s in key["Statement"] if s["Sid"] == "OperatorsUseTheLedger"]
    assert operator in use["Condition"]["ArnLike"]["aws:PrincipalArn"]
