"""The CLI, the idle-scan Lambda and the organisation stack ask the same question before a run
(:func:`~sagesaver.pipelines.kinds.acting_problem`): the same policy is refused by each, for
the same reason (each naming its own setting), before any AWS call, or accepted by each."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagesaver import organisation_handlers
from sagesaver.core.errors import InputError
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.lambda_handlers import RunFailed, idle_endpoints
from tests.conftest import Cli

EAST = "us-east-1"
TOPIC = "arn:aws:sns:us-east-1:123456789012:admins"

CASES = [
    # (policy, ledger given, the problem; None: accepted)
    ("endpoints: {action: notify}\n", True, "needs notify.sns_topic_arn or notify.channels"),
    ("endpoints: {action: delete}\n", True, "needs notify.sns_topic_arn or notify.channels"),
    (
        f"endpoints: {{action: delete}}\nnotify: {{sns_topic_arn: '{TOPIC}'}}\n",
        False,
        "endpoints.action 'delete' needs",
    ),
    (
        f"jobs: {{warm_pools: {{action: release}}}}\nnotify: {{sns_topic_arn: '{TOPIC}'}}\n",
        False,
        "jobs.warm_pools.action 'release' needs",
    ),
    (f"endpoints: {{action: delete}}\nnotify: {{sns_topic_arn: '{TOPIC}'}}\n", True, None),
]


@pytest.mark.parametrize(("policy", "with_ledger", "problem"), CASES)
def test_every_entry_point_refuses_or_accepts_alike(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    with_ledger: bool,
    problem: str | None,
) -> None:
    fleet.topic(EAST, "admins")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy)
    monkeypatch.setenv("SAGESAVER_POLICY", policy)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.setenv("SAGESAVER_REGIONS", EAST)
    monkeypatch.setenv("SAGESAVER_RUN_BUCKET", "org-runs")
    monkeypatch.setenv("SAGESAVER_MEMBER_ROLE", "SageSaverExecution")
    ledger = f"{tmp_path / 'ledger.sqlite'}"
    if with_ledger:
        monkeypatch.setenv("SAGESAVER_LEDGER", ledger)
    else:
        monkeypatch.delenv("SAGESAVER_LEDGER", raising=False)
    sim.client("s3", EAST).create_bucket(Bucket="org-runs")

    # the CLI always has a ledger (its default file), so it never asks for one
    cli_args = ["run", "--policy", str(policy_file), "--region", EAST, "--apply"]
    cli_result = cli(*cli_args, "--ledger", ledger)
    sim.middleware.counts.clear()
    try:
        lambda_problem = None
        idle_endpoints({}, None)
    except RunFailed as failed:
        lambda_problem = failed.summary.get("input_error")
    try:
        stack_problem = None
        organisation_handlers.list_items(
            {
                "execution": "check",
                "started": "2026-12-07T10:00:00Z",
                "input": {"accounts": ["111111111111"]},
            },
            None,
        )
    except InputError as exc:
        stack_problem = str(exc)

    if problem is None:
        assert cli_result.exit_code == 0, cli_result.stderr
        assert lambda_problem is None and stack_problem is None
        return
    assert lambda_problem is not None and problem in lambda_problem
    assert stack_problem is not None and problem in stack_problem
    if with_ledger:  # the CLI's refusal: the same words, its own flag
        assert cli_result.exit_code == 2
        assert problem in cli_result.stderr
    if "needs notify" in problem:
        assert lambda_problem.startswith("SAGESAVER_APPLY with ")
        assert stack_problem.startswith("SAGESAVER_APPLY with ")
        assert "--apply with " in cli_result.stderr
    else:
        assert "SAGESAVER_LEDGER" in lambda_problem and "SAGESAVER_LEDGER" in stack_problem
    assert sum(sim.middleware.counts.values()) == 0  # refused before any AWS call
