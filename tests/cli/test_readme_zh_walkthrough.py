"""README.zh-CN.md followed on the simulator, as a reader in Beijing would, from top to bottom.

Every command line of its shell blocks is run in order, with the CLI in-process, in a fresh
directory, against a fleet that matches what the README says it ran on; ``policy.yaml`` is
written from the README's own YAML blocks (a block that starts with ``# 片段`` is an example
of some keys, checked as a policy of its own and not added). Each line must succeed, or be
listed below in ``NOT_RUN`` with the reason (no line is skipped silently). Each sample
output (a code block under a "示例…" label) is compared with what the command above it
printed, at the moment the README names:

* "示例输出：" — the whole output;
* "…（开头几行）：" — the first lines of the output;
* "…（节选…）：" — lines of the output, in order (others may come between them).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import time_machine

from sagesaver.core.policy import parse_policy
from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from tests.cli.readme import ROOT, Block, Line, blocks, shell_lines, without_redirection
from tests.conftest import Cli

README = "README.zh-CN.md"
# The moment the samples were made, as the README says: Tuesday 22:00 in Beijing.
NOW = datetime(2026, 12, 1, 14, 0, tzinfo=timezone.utc)
BEIJING, NINGXIA = "cn-north-1", "cn-northwest-1"

# Lines of the README this test does not run, and why. Each is still parsed by the real CLI
# (test_docs.py::test_every_documented_command_line_parses).
NOT_RUN: dict[str, str] = {
    "python3 -m venv .venv && .venv/bin/pip install .": (
        "installs SageSaver; the test runs the installed package in-process"
    ),
    "make demo": "runs `sagesaver demo` (tests/demo)",
    "make test": "runs this test-suite",
    "sagesaver deploy package --zip sagesaver-lambda.zip --architecture arm64": (
        "downloads the Lambda's wheels with pip (network); tests/deploy/test_readme_deploy.py "
        "builds the package and follows README.md's deploy block on the simulator"
    ),
    "aws s3 cp sagesaver-lambda.zip s3://my-artifacts-cn/sagesaver-lambda.zip "
    "--region cn-north-1": "the AWS CLI, uploading the package built above",
    "sagesaver deploy render --policy policy.yaml --region cn-north-1 --package "
    "sagesaver-lambda.zip --code-bucket my-artifacts-cn --code-key sagesaver-lambda.zip "
    "--email ml-platform@example.cn > sagesaver.json": (
        "needs the package above; tests/cli/test_china.py renders for Beijing"
    ),
    "sagesaver deploy apply --policy policy.yaml --region cn-north-1 --package "
    "sagesaver-lambda.zip --code-bucket my-artifacts-cn --email ml-platform@example.cn": (
        "needs the package above (tests/deploy/test_readme_deploy.py)"
    ),
    "sagesaver deploy delete --stack-name sagesaver --region cn-north-1 --apply": (
        "needs the stack above"
    ),
    "aws sns create-topic --name ml-admins --region cn-north-1": (
        "the AWS CLI; the fixture creates the same topic (fleet.topic)"
    ),
    "aws sns subscribe --topic-arn arn:aws-cn:sns:cn-north-1:123456789012:ml-admins "
    "--protocol email --notification-endpoint ml-platform@example.cn --region cn-north-1": (
        "the AWS CLI; an e-mail subscription delivers nothing in the simulator"
    ),
    "sagesaver restore recsys-demo --apply": (
        "needs an endpoint deleted after step 4's 72 h grace period; tests/cli/test_china.py "
        "deletes and restores one in cn-north-1"
    ),
    "sagesaver demo": "starts a simulator of its own (tests/demo)",
}


@pytest.fixture
def beijing(sim: Simulator, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fleet the README's samples were made on; returns the topic's ARN. The profile the
    README exports exists (credentials come from the simulator's environment), and the
    ledger lives in this test's own data directory."""
    old = NOW - timedelta(days=3)
    with time_machine.travel(NOW, tick=False):
        gpu = [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 1)]
        fleet.endpoint(BEIJING, "recsys-demo", gpu, changed=old)
        cpu = [VariantSpec("AllTraffic", "ml.m5.xlarge", 1)]
        fleet.endpoint(NINGXIA, "forgotten-poc", cpu, changed=old)
        fleet.endpoint(BEIJING, "fraud-scoring", changed=old)
        fleet.invocations(BEIJING, "fraud-scoring", "AllTraffic", [(NOW - timedelta(hours=2), 120)])
        fleet.notebook(BEIJING, "dev-alice")
        fleet.notebook(BEIJING, "dev-bob", status="Stopped")
        topic = fleet.topic(BEIJING, "ml-admins")
    config = tmp_path / "aws-config"
    config.write_text("[profile china-admin]\nregion = cn-north-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return topic


def _sample_mode(label: str) -> str:
    if "开头几行" in label:
        return "head"
    if "节选" in label:
        return "excerpt"
    assert label == "示例输出：", f"unknown sample label {label!r}"
    return "whole"


def _compare(sample: Block, output: str) -> None:
    shown = [line.rstrip() for line in sample.text.splitlines()]
    printed = [line.rstrip() for line in output.splitlines()]
    where = f"{sample.path}:{sample.line}"
    mode = _sample_mode(sample.label)
    if mode == "whole":
        assert shown == printed, f"{where}: the sample is not what the command prints"
    elif mode == "head":
        assert shown == printed[: len(shown)], f"{where}: the output does not start so"
    else:
        position = 0
        for line in shown:
            assert line in printed[position:], (
                f"{where}: {line!r} is not printed (after line {position}):\n" + output
            )
            position = printed.index(line, position) + 1


def _run(line: Line, cli: Cli, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run one README line: ``export`` sets the environment, ``sagesaver`` runs the CLI
    (``> file`` writes its output there). Returns what it printed."""
    words = line.words
    if words[0] == "export":
        for assignment in words[1:]:
            key, value = assignment.split("=", 1)
            monkeypatch.setenv(key, value)
        return ""
    assert line.is_sagesaver, f"{line.where}: {line.text!r}: run it, or list it in NOT_RUN"
    words, target = without_redirection(words)
    result = cli(*words[1:])
    assert result.exit_code == 0, (line.where, line.text, result.stdout, result.stderr)
    if target is not None:
        (cwd / target).write_text(result.stdout, encoding="utf-8")
    return str(result.stdout)


def test_the_chinese_readme_runs_and_prints_what_it_shows(
    cli: Cli,
    sim: Simulator,
    beijing: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    monkeypatch.chdir(work)
    ran, compared, policy = [], 0, work / "policy.yaml"
    output = None
    with time_machine.travel(NOW, tick=False):
        for block in blocks(README):
            if block.label.startswith("示例"):
                assert output is not None, f"{block.path}:{block.line}: a sample of nothing"
                _compare(block, output)
                compared += 1
            elif block.lang == "yaml" and block.text.startswith("# policy.yaml（续）"):
                policy.write_text(policy.read_text() + block.text + "\n")
            elif block.lang == "yaml" and block.text.startswith("# policy.yaml"):
                policy.write_text(block.text + "\n")
            elif block.lang == "yaml" and block.text.startswith("# 片段"):
                # An example of some keys, not part of the walkthrough's policy: it must be a
                # valid policy on its own (the walkthrough has no chat webhook to post to).
                parse_policy(block.text, f"{block.path}:{block.line}")
            elif block.lang == "sh":
                for line in shell_lines(block):
                    if line.text in NOT_RUN:
                        continue
                    output = _run(line, cli, work, monkeypatch)
                    ran.append(line.text)
            else:
                pytest.fail(f"{block.path}:{block.line}: a {block.lang!r} block: label it")
    # What the walkthrough did is what the README says happened.
    assert compared >= 8
    assert len(Fleet(sim).published(beijing)) == 1  # run --apply sent the digest once
    assert (work / "on-start.sh").read_text().startswith("#!/bin/bash")
    assert {"sagesaver lifecycle install sagesaver-autostop --region cn-north-1 --attach 'dev-*'",
            "sagesaver run --policy policy.yaml --apply"} <= set(ran)  # fmt: skip


def test_every_line_not_run_is_still_in_the_readme_and_every_block_is_followed() -> None:
    lines = [line.text for b in blocks(README) if b.lang == "sh" for line in shell_lines(b)]
    assert [text for text in NOT_RUN if text not in lines] == []
    assert {b.lang for b in blocks(README) if not b.label.startswith("示例")} <= {"sh", "yaml"}


def test_a_sample_that_differs_fails() -> None:
    """The comparison can fail: a number changed, a line missing, lines out of order."""
    printed = "Wasting: 2 idle resources, ¥6.97/h\nIdle, left alone: 1 kept\n"

    def sample(label: str, text: str) -> Block:
        return Block(README, 1, "", text, label)

    _compare(sample("示例输出（节选）：", "Idle, left alone: 1 kept"), printed)
    _compare(sample("示例输出（开头几行）：", "Wasting: 2 idle resources, ¥6.97/h"), printed)
    _compare(sample("示例输出：", printed), printed)
    for label, text in [
        ("示例输出（节选）：", "Wasting: 2 idle resources, ¥5.37/h"),
        ("示例输出（节选）：", "Idle, left alone: 1 kept\nWasting: 2 idle resources, ¥6.97/h"),
        ("示例输出（开头几行）：", "Idle, left alone: 1 kept"),
        ("示例输出：", "Wasting: 2 idle resources, ¥6.97/h"),
    ]:
        with pytest.raises(AssertionError):
            _compare(sample(label, text), printed)
