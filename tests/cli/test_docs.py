"""The English and the Chinese README stay in step, and every command they show runs.

Every ``sagesaver`` line of the READMEs' shell blocks (and of the Chinese agent guide and the
example policies' comments) is given to the real CLI with the same arguments: it must parse,
options and values included. Placeholders are replaced from the explicit table below; a line
the test cannot give to the CLI would be listed in ``NOT_PARSED`` with the reason, never
skipped. The Chinese README's walkthrough is also run on the simulator, and its sample outputs
compared with what the commands print (``test_readme_zh_walkthrough.py``).
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import typer.main

from sagesaver.cli import app
from sagesaver.demo.simulator import Fault, Fleet, Simulator
from tests.cli.readme import (
    READMES,
    ROOT,
    Line,
    blocks,
    leaf_commands,
    long_options,
    mentions,
    sagesaver_lines,
    shell_lines,
    without_redirection,
)
from tests.conftest import Cli

EXAMPLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("*.yaml"))
DOCS = (*READMES, "docs/autostop.zh-CN.md", *EXAMPLES)

# What a placeholder written in a command line stands for: each alternative is checked.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    # optional options, written in brackets: the line is checked without and with them
    "[--restart]": ("", "--restart"),
    "[--output json]": ("", "--output json"),
    # "the options above": in `schedule run --at ... ...`, the policy of the lines before it
    "...": ("--policy policy.yaml",),
}
# Lines that cannot be given to the CLI, with the reason. None today.
NOT_PARSED: dict[str, str] = {}
# What is left after the substitutions must not look like a placeholder (NAME, FILE, <x>, a|b).
PLACEHOLDER_LIKE = re.compile(r"^[A-Z][A-Z_]{1,}$|\.\.\.|[\[\]<>|]")


def documented_lines() -> list[Line]:
    return [line for path in DOCS for line in sagesaver_lines(path)]


def expanded(line: Line) -> list[list[str]]:
    """The argument lists a line stands for, its placeholders replaced."""
    text = line.text
    used = [key for key in PLACEHOLDERS if key in text]
    variants = []
    for choice in itertools.product(*(PLACEHOLDERS[key] for key in used)):
        concrete = text
        for key, value in zip(used, choice, strict=True):
            concrete = concrete.replace(key, value)
        words, _ = without_redirection(Line(line.where, concrete, "").words)
        left = [word for word in words if PLACEHOLDER_LIKE.search(word)]
        assert not left, f"{line.where}: {left} look like placeholders: add them to PLACEHOLDERS"
        variants.append(words[1:])
    return variants


def parsed(args: list[str]) -> dict[str, Any]:
    """Parse ``args`` exactly as ``sagesaver`` does, options and values converted, but call a
    recorder instead of the command: nothing is read or changed. Returns the parameters."""
    root = typer.main.get_command(app)
    command, rest = root, list(args)
    while hasattr(command, "commands"):
        if command.invoke_without_command and not (rest and rest[0] in command.commands):
            break  # a group that runs itself too (sagesaver studio [options])
        assert rest and rest[0] in command.commands, f"no command {' '.join(args[:1])!r}"
        command, rest = command.commands[rest[0]], rest[1:]
    seen: dict[str, Any] = {}
    command.callback = lambda **params: seen.update(params)
    root.main(list(args), prog_name="sagesaver", standalone_mode=False)
    return seen


def test_every_command_is_in_both_readmes() -> None:
    commands = list(leaf_commands())
    assert {"scan", "run", "schedule run", "deploy render", "lifecycle install"} <= set(commands)
    for readme in READMES:
        text = (ROOT / readme).read_text(encoding="utf-8")
        missing = [c for c in commands if f"sagesaver {c}" not in text]
        assert missing == [], f"{readme} does not mention {missing}"


def test_both_readmes_name_the_same_options_of_each_command() -> None:
    """Each option of each command is named by both READMEs or by neither."""
    english, chinese = ((ROOT / r).read_text(encoding="utf-8") for r in READMES)
    differences = {}
    for name, command in leaf_commands().items():
        options = long_options(command)
        in_english = {o for o in options if mentions(english, o)}
        in_chinese = {o for o in options if mentions(chinese, o)}
        if in_english != in_chinese:
            differences[name] = {
                "only README.md": sorted(in_english - in_chinese),
                "only README.zh-CN.md": sorted(in_chinese - in_english),
            }
    assert differences == {}


def test_the_option_check_can_tell_options_apart() -> None:
    assert mentions("use --attach 'dev-*'", "--attach")
    assert not mentions("use --attach-tag team=ml", "--attach")
    assert not mentions("use --attach", "--at")
    options = long_options(leaf_commands()["deploy package"])
    assert options == {"--zip", "--architecture"}


def test_the_chinese_readme_is_linked_and_covers_the_seed_workflows() -> None:
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    chinese = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "(README.zh-CN.md)" in english
    for needed in ("make demo", "make test", "cn-north-1", "--offline-prices", "price_source"):
        assert needed in chinese and needed in english, needed
    for workflow in ("工作流一", "工作流二", "工作流三"):
        assert workflow in chinese


def test_the_docs_show_commands_of_every_kind() -> None:
    """The extraction finds what a reader sees: the lines of both READMEs, joined
    continuations, and the commands of the China example."""
    found = {path: [line.text for line in sagesaver_lines(path)] for path in DOCS}
    assert len(found["README.md"]) >= 20 and len(found["README.zh-CN.md"]) >= 15
    assert any(
        t.startswith("sagesaver deploy render") and "--email" in t for t in found["README.md"]
    )
    assert any(t.startswith(".venv/bin/sagesaver scan") for t in found["README.zh-CN.md"])
    assert found["examples/china.yaml"], "examples/china.yaml shows the commands it goes with"


@pytest.mark.parametrize("line", documented_lines(), ids=lambda line: line.where)
def test_every_documented_command_line_parses(line: Line) -> None:
    if line.text in NOT_PARSED:
        pytest.fail(f"listed in NOT_PARSED ({NOT_PARSED[line.text]}): the test would parse it")
    for args in expanded(line):
        try:
            parsed(args)
        except Exception as exc:  # the CLI's usage errors, as the user would see them
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            raise AssertionError(f"{line.where}: sagesaver {' '.join(args)}: {message}") from exc


def test_the_parse_check_refuses_what_the_cli_refuses() -> None:
    """The check is the CLI's own: the reviewer's line fails it, its fix passes."""
    with pytest.raises(Exception, match="No such option: --output"):
        parsed(["deploy", "package", "--output", "x.zip", "--architecture", "arm64"])
    params = parsed(["deploy", "package", "--zip", "x.zip", "--architecture", "arm64"])
    assert (str(params["zip_file"]), params["architecture"]) == ("x.zip", "arm64")
    with pytest.raises(Exception, match="unexpected extra argument"):
        parsed(["schedule", "run", "--at", "2026-11-30T07:05:00Z", "..."])
    with pytest.raises(AssertionError, match="placeholders"):
        expanded(Line("x:1", "sagesaver restore NAME --apply", ""))


def test_every_placeholder_and_exception_is_still_used() -> None:
    texts = [line.text for line in documented_lines()]
    assert [k for k in PLACEHOLDERS if not any(k in t for t in texts)] == []
    assert [k for k in NOT_PARSED if k not in texts] == []


def test_deploy_apply_is_said_to_be_a_dry_run_without_apply() -> None:
    words = {"README.md": "dry run", "README.zh-CN.md": "演练"}
    for readme, dry_run in words.items():
        shown = [
            line
            for line in sagesaver_lines(readme)
            if line.words[1:3] == ["deploy", "apply"] and "--apply" not in line.words
        ]
        assert shown, readme
        for line in shown:
            assert dry_run in line.comment, f"{line.where}: say that it is a dry run"


def _section(path: str, heading: str) -> str:
    text = (ROOT / path).read_text(encoding="utf-8")
    assert heading in text, (path, heading)
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_the_agent_section_says_it_needs_a_route_to_the_sagemaker_api() -> None:
    """A notebook instance without internet access reaches StopNotebookInstance only through
    an interface VPC endpoint; in the China regions its service name starts with cn.com."""
    english = _section("README.md", "## Auto-stop inside notebook instances")
    chinese = _section("README.zh-CN.md", "## 工作流一")
    for text in (english, chinese):
        assert "StopNotebookInstance" in text
        assert "com.amazonaws.<region>.sagemaker.api" in text
        assert "cn.com.amazonaws.cn-north-1.sagemaker.api" in text
        assert "cn.com.amazonaws.cn-northwest-1.sagemaker.api" in text
        assert "describe-vpc-endpoint-services" in text
    assert "interface VPC endpoint" in english and "private DNS" in english
    assert "接口 VPC 终端节点" in chinese and "私有 DNS" in chinese


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_passes_validate(cli: Cli, example: str) -> None:
    result = cli("validate", str(ROOT / example), "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True


def test_the_china_example_covers_the_seed_workflows(cli: Cli) -> None:
    result = cli("validate", str(ROOT / "examples/china.yaml"), "--output", "json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["regions"] == ["cn-north-1"]
    # idle endpoints: announced to the topic, deleted after a grace period (with a backup)
    assert summary["endpoints"]["action"] == "delete"
    assert summary["endpoints"]["grace_hours"] >= 24
    assert summary["notify"]["sns_topic_arn"].startswith("arn:aws-cn:sns:cn-north-1:")
    # start and stop on Beijing time
    assert summary["schedules"] and all(
        s["timezone"] == "Asia/Shanghai" for s in summary["schedules"].values()
    )
    # the auto-stop agent: the example shows the lifecycle commands that install it
    commands = [line.text for line in sagesaver_lines("examples/china.yaml")]
    assert any(c.startswith("sagesaver lifecycle install") for c in commands), commands
    assert any(c.startswith("sagesaver validate examples/china.yaml") for c in commands)


def test_fenced_blocks_are_read_with_their_labels() -> None:
    found = blocks("README.zh-CN.md")
    assert any(b.lang == "yaml" and b.text.startswith("# policy.yaml") for b in found)
    samples = [b for b in found if b.label.startswith("示例")]
    assert len(samples) >= 6
    lines = shell_lines(next(b for b in found if "deploy apply" in b.text))
    assert next(line.words[1:3] for line in lines if line.is_sagesaver) == ["deploy", "package"]


def test_the_paths_the_docs_read_exist() -> None:
    for path in DOCS:
        assert Path(ROOT / path).is_file(), path


def test_the_english_json_example_names_only_what_scan_prints(
    cli: Cli, sim: Simulator, fleet: Fleet
) -> None:
    """README.md's ``--output json`` example is abridged ("..."), but every key it shows is
    one ``scan`` prints, where it shows it: resources, summary, costs and errors."""
    [example] = [json.loads(b.text) for b in blocks("README.md") if b.lang == "json"]
    now = datetime.now(timezone.utc)
    fleet.endpoint("us-east-1", "llm-playground", changed=now - timedelta(days=3))

    def deny(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        denied = region == "eu-west-1" and operation == "ListNotebookInstances"
        return Fault(400, "AccessDeniedException", "not authorized") if denied else None

    sim.middleware.fault = deny
    result = cli("scan", "--region", "us-east-1", "--region", "eu-west-1", "--output", "json")
    assert result.exit_code == 1, result.stderr  # the denied region is an error, listed
    printed = json.loads(result.stdout)

    def keys(document: dict[str, Any]) -> set[str]:
        return set(document) - {"..."}

    assert keys(example) <= keys(printed)
    [idle] = [r for r in printed["resources"] if r["name"] == "llm-playground"]
    assert keys(example["resources"][0]) <= keys(idle)
    assert keys(example["summary"]) <= keys(printed["summary"])
    assert keys(example["summary"]["costs"]["USD"]) <= keys(printed["summary"]["costs"]["USD"])
    assert printed["errors"] and keys(example["errors"][0]) <= keys(printed["errors"][0])
