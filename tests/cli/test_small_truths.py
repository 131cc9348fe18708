"""The small truths a user tripped on (issue 28): ``validate`` lists every problem, ``--output``
offers csv only where csv works, piped tables follow ``COLUMNS``, a narrow table keeps the
regions apart, a closed pipe ends quietly, and the words are written as a person would."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from sagesaver.demo.simulator import Fault, Fleet, Simulator, VariantSpec
from sagesaver.ledger import SqliteLedger
from tests.conftest import Cli

EAST, WEST = "us-east-1", "us-west-2"
OLD = timedelta(days=10)


# 1. validate lists every problem, each with its location


def test_validate_lists_every_problem_with_its_location(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "endpoints:\n"
        "  idle_hours: -1\n"  # line 2
        "  action: erase\n"  # line 3
        "notify:\n"
        "  repeat_hours: -2\n"  # line 5
        "bogus: 1\n"  # line 6
    )
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "more" not in result.stderr  # never "(and 3 more problems)"
    assert f"{path}: 4 problems" in result.stderr
    for fragment in (
        f"{path}:2: endpoints.idle_hours: Input should be greater than 0",
        f"{path}:3: endpoints.action: Input should be 'notify' or 'delete'",
        f"{path}:5: notify.repeat_hours: Input should be greater than or equal to 0",
        f"{path}:6: bogus: unknown key",
    ):
        assert fragment in result.stderr, (fragment, result.stderr)


def test_validate_lists_every_region_and_topic_problem(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "regions: [xx-nowhere-9]\n"
        "notify:\n"
        "  sns_topic_arn: arn:aws:sns:zz-nowhere-7:123456789012:admins\n"
    )
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert f"{path}: 2 problems" in result.stderr
    assert f"{path}:1: regions: SageMaker is not offered in xx-nowhere-9" in result.stderr
    assert (
        f"{path}:3: notify.sns_topic_arn: zz-nowhere-7 is not a region that offers SNS"
        in result.stderr
    )


def test_one_problem_stays_one_line(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("endpoints:\n  idle_hours: -1\n")
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}:2: endpoints.idle_hours: Input should be greater than 0"
    ]


def test_an_error_is_printed_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Brackets in a problem (a list, a pattern) are its words, not markup to drop."""
    from sagesaver.cli.common import fail

    assert fail("endpoints.exclude: [prod-*] and [dev] overlap").exit_code == 2
    assert "endpoints.exclude: [prod-*] and [dev] overlap" in capsys.readouterr().err


# 2. csv is offered only where it works

# (command, whether it prints csv): every command with -o/--output.
OUTPUT_COMMANDS = [
    (["scan"], True),
    (["run"], True),
    (["backups"], True),
    (["schedule", "show"], True),
    (["validate", "policy.yaml"], False),
    (["studio"], False),
    (["savings"], False),
    (["restore", "gone"], False),
    (["schedule", "run"], False),
    (["lifecycle", "install", "cfg"], False),
    (["backtest"], False),
    (["demo"], False),
]


@pytest.mark.parametrize(("command", "prints_csv"), OUTPUT_COMMANDS, ids=lambda c: str(c))
def test_help_offers_csv_only_where_it_works(
    cli: Cli, command: list[str], prints_csv: bool
) -> None:
    path = [c for c in command if c not in ("policy.yaml", "gone", "cfg")]
    page = cli(*path, "--help")
    assert page.exit_code == 0
    choices = "[table|json|csv]" if prints_csv else "[table|json]"
    assert f"-o, --output {choices}" in page.stdout, page.stdout
    if prints_csv:
        return
    refused = cli(*command, "--output", "csv")
    assert refused.exit_code == 2
    text = " ".join(refused.stderr.split())
    assert "'csv' is not one of 'table', 'json'" in text, text
    assert "Traceback" not in text


def test_run_as_csv_keeps_stdout_a_csv(cli: Cli, fleet: Fleet, now: datetime) -> None:
    """``run -o csv``: the resources on stdout, one row each; what the run did (its digest) on
    stderr, as the errors are."""
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    result = cli("run", "--region", EAST, "--offline-prices", "-o", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["kind"], r["name"], r["decision"]) for r in rows] == [
        ("endpoint", "idle-one", "notify")
    ]
    assert "Subject: SageSaver: 1 idle endpoint," in result.stderr


# 3. piped output follows COLUMNS


@pytest.mark.parametrize("columns", [80, 200])
def test_piped_output_follows_columns(
    cli: Cli, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    monkeypatch.setenv("COLUMNS", str(columns))
    result = cli("run", "--region", EAST, "--offline-prices")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(_rule(lines)) == columns  # the rule above the digest spans the width
    assert max(len(line) for line in lines if line[:1] in ("┏", "┃", "┡", "│", "└")) <= columns
    assert ("narrow terminal" in result.stdout) is (columns == 80)


def test_piped_output_without_columns_is_160_wide(
    cli: Cli, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    monkeypatch.delenv("COLUMNS", raising=False)
    result = cli("run", "--region", EAST, "--offline-prices")
    assert result.exit_code == 0, result.stderr
    assert len(_rule(result.stdout.splitlines())) == 160


def _rule(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("───"))


# 4. an 80-column table keeps the regions apart


def _row_of(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if name in line)


def _title(text: str) -> str:
    """The endpoints table's title (wrapped to the table's width), in one line."""
    above = text.split("Real-time endpoints", 1)[1].split("┏", 1)[0]
    return " ".join(f"Real-time endpoints{above}".split())


def test_a_narrow_table_keeps_the_region_when_rows_differ_in_region(
    cli: Cli, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    # Short names: the table has room for Region, and keeps it.
    fleet.endpoint(EAST, "idle-east", changed=now - OLD)
    fleet.endpoint(WEST, "idle-west", changed=now - OLD)
    short = cli("scan", "--region", EAST, "--region", WEST, "--offline-prices")
    assert short.exit_code == 0, short.stderr
    assert "Region" in short.stdout
    assert EAST in _row_of(short.stdout, "idle-east")
    assert WEST in _row_of(short.stdout, "idle-west")
    title = _title(short.stdout)
    assert "narrow terminal: without status, instances, idle" in title
    assert "region" not in title


def test_a_narrow_table_never_drops_differing_regions(
    cli: Cli, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names too long for a table with Region: each resource is a block, its region beside it,
    rather than a table that cannot tell the regions apart."""
    monkeypatch.setenv("COLUMNS", "80")
    fleet.endpoint(EAST, "recommendation-east-1", changed=now - OLD)  # 21 characters
    fleet.endpoint(WEST, "recommendation-west-2", changed=now - OLD)
    result = cli("scan", "--region", EAST, "--region", WEST, "--offline-prices")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    for name, region in (("recommendation-east-1", EAST), ("recommendation-west-2", WEST)):
        block = lines[lines.index(name) + 1]  # the block layout: the facts under the name
        assert block.strip().startswith(f"{region} · notify"), block


def test_a_narrow_table_of_one_region_may_leave_it_out_and_says_so(
    cli: Cli, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    fleet.endpoint(EAST, "recommendation-east-1", changed=now - OLD)
    fleet.endpoint(EAST, "recommendation-east-2", changed=now - OLD)
    result = cli("scan", "--region", EAST, "--offline-prices")
    assert result.exit_code == 0, result.stderr
    title = _title(result.stdout)
    assert "narrow terminal: without region, status, instances, idle; all in us-east-1" in title
    assert "┃ Name" in result.stdout and "Region" not in result.stdout


# 5. a closed pipe ends quietly


def _scan_into_a_closed_pipe(sim: Simulator, output: str) -> tuple[int, str]:
    """``sagesaver scan`` whose reader is gone before it writes (``| head -1`` having read its
    line): the exit code and stderr."""
    script = Path(sys.executable).with_name("sagesaver")
    env = {**os.environ, **sim.env(EAST)}
    process = subprocess.Popen(
        [str(script), "scan", "--region", EAST, "--offline-prices", "-o", output],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    process.stdout.close()  # the read end closed: every write gets EPIPE
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr.decode()


@pytest.mark.slow
@pytest.mark.parametrize("output", ["table", "json", "csv"])
def test_a_closed_pipe_ends_quietly(
    sim: Simulator, fleet: Fleet, now: datetime, output: str
) -> None:
    for index in range(40):  # more than a pipe's buffer as JSON
        fleet.endpoint(EAST, f"idle-{index:02}", changed=now - OLD)
    code, stderr = _scan_into_a_closed_pipe(sim, output)
    assert (code, stderr) == (0, "")


@pytest.mark.slow
def test_a_closed_pipe_keeps_a_failure_known_before(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    sim.middleware.fault = lambda operation, region, environ: (
        Fault(400, "AccessDeniedException", "not allowed")
        if operation == "ListNotebookInstances"
        else None
    )
    code, stderr = _scan_into_a_closed_pipe(sim, "table")
    assert code == 1  # a region failed: still told by the exit code, and on stderr
    assert "AccessDeniedException" in stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


# 6. words as a person writes them

PLURAL_HACK = re.compile(r"[A-Za-z]\((?:s|es|ies)\)")
WHOLE_WITH_DECIMAL = re.compile(r"\b\d+\.0 resource-hours?\b")
ONE_WITH_A_PLURAL = re.compile(
    r"(?<![\d.,/])1 (?:idle |running )?(?:resources|endpoints|notebook instances|regions|days"
    r"|actions|errors|models|scaling policies|changes|instances|groups)\b"
)


def test_no_plural_hacks_in_what_the_commands_print(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    fleet.endpoint(EAST, "idle-one", [VariantSpec("AllTraffic", "ml.m5.large")], changed=now - OLD)
    fleet.endpoint(EAST, "idle-two", changed=now - OLD)
    fleet.notebook(EAST, "dev-box")  # running, no auto-stop guard
    ledger = str(tmp_path / "ledger.sqlite")
    SqliteLedger(Path(ledger))  # a new, empty ledger: a dry run only reads one
    notify = tmp_path / "notify.yaml"
    notify.write_text(f"notify: {{sns_topic_arn: '{topic}'}}\n")
    delete = tmp_path / "delete.yaml"
    delete.write_text(
        "endpoints: {action: delete, grace_hours: 0, include: [idle-one]}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    common = ["--region", EAST, "--offline-prices"]
    outputs: dict[str, str] = {}

    def run(label: str, *args: str) -> None:
        result = cli(*args)
        assert result.exit_code == 0, (label, result.stderr)
        outputs[label] = result.stdout + result.stderr

    run("scan", "scan", *common)
    run("run dry", "run", *common, "--policy", str(notify), "--ledger", ledger)
    with time_machine.travel(now, tick=False):
        run("run apply", "run", *common, "--policy", str(delete), "--ledger", ledger, "--apply")
    with time_machine.travel(now + timedelta(hours=2), tick=False):  # a run sees it gone
        run("run again", "run", *common, "--policy", str(delete), "--ledger", ledger, "--apply")
        run("savings", "savings", "--ledger", ledger)
    run("backups", "backups", "--ledger", ledger)
    run("restore", "restore", "idle-one", "--region", EAST, "--ledger", ledger)
    run("backtest", "backtest", "--region", EAST, "--days", "2")
    run("report", "report", *common, "--ledger", ledger)
    page = tmp_path / "report.html"
    run("report html", "report", *common, "--ledger", ledger, "--html", str(page))
    outputs["report page"] = re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))
    run("validate", "validate", str(delete))
    outputs["digest subjects"] = "\n".join(m["Subject"] for m in fleet.published(topic))
    assert outputs["digest subjects"]
    found = {
        label: [
            *PLURAL_HACK.findall(text),
            *WHOLE_WITH_DECIMAL.findall(text),
            *ONE_WITH_A_PLURAL.findall(text),
        ]
        for label, text in outputs.items()
    }
    assert {label: hacks for label, hacks in found.items() if hacks} == {}
    # The sentences that had them, as they read now.
    assert "Wasting: 2 idle resources SageSaver would act on" in outputs["scan"]
    assert "No auto-stop guard: 1 running notebook instance," in outputs["scan"]
    assert "SageSaver: 2 idle endpoints," in outputs["run dry"]
    assert "SageSaver found 2 idle SageMaker endpoints in us-east-1" in outputs["run dry"]
    assert "SageSaver: 1 idle endpoint," in outputs["digest subjects"]
    assert "1 model, 0 scaling policies" in outputs["backups"]
    assert "over 2 resource-hours off" in outputs["savings"]
    assert "Backtest over 2 days, 1 region:" in outputs["backtest"]
