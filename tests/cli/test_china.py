"""The whole pipeline in the China regions, on the simulator, with its Price List stand-in
answering from cn-northwest-1 in the real GetProducts format: scan, run with its digest,
schedule run, deploy render (cfn-lint), report, savings, and the Lambda handler."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.offers import table_from_offer
from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from tests.conftest import Cli, run_at

BEIJING, NINGXIA = "cn-north-1", "cn-northwest-1"
OLD = timedelta(days=3)
# Monday 07:05 in Beijing (UTC+8) is Sunday 23:05 UTC.
MONDAY_0705_BEIJING = "2026-11-29T23:05:00Z"


def cny(sim: Simulator, region: str, component: str, instance: str) -> float:
    """The stand-in's CNY price, read from its offer file (the expectation is not typed in)."""
    regions, _ = table_from_offer(sim.behaviours.price_list.offer("aws-cn"))
    assert regions[region]["currency"] == "CNY"
    return float(regions[region][component][instance])


@pytest.fixture
def china(sim: Simulator, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch) -> str:
    """A team in Beijing: idle endpoints in both China regions, a busy one, an unguarded
    notebook; its SNS topic in cn-north-1. Returns the topic's ARN."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", BEIJING)
    fleet.endpoint(
        BEIJING, "gpu-idle", [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)], changed=now - OLD
    )
    fleet.endpoint(NINGXIA, "cpu-idle", changed=now - OLD)
    fleet.endpoint(BEIJING, "busy", changed=now - OLD)
    fleet.invocations(BEIJING, "busy", "AllTraffic", [(now - timedelta(hours=1), 5)])
    fleet.notebook(BEIJING, "dev-notebook")
    topic = fleet.topic(BEIJING, "ml-admins")
    assert topic.startswith("arn:aws-cn:sns:cn-north-1:")
    return topic


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in document["resources"]}


def test_scan_prices_live_in_cny_and_never_adds_them_to_usd(
    cli: Cli, sim: Simulator, china: str
) -> None:
    sim.middleware.counts.clear()
    code, doc = cli.json("scan", "--all-regions")
    assert code == 0, doc["errors"]
    assert doc["regions"] == [BEIJING, NINGXIA]
    found = by_name(doc)
    gpu = found["gpu-idle"]
    assert gpu["arn"].startswith("arn:aws-cn:sagemaker:cn-north-1:")
    assert (gpu["currency"], gpu["price_source"]) == ("CNY", "live")
    assert gpu["hourly_cost"] == pytest.approx(2 * cny(sim, BEIJING, "hosting", "ml.g4dn.xlarge"))
    assert gpu["hourly_cost_usd"] is None  # USD prices only
    ningxia = found["cpu-idle"]
    assert ningxia["hourly_cost"] == pytest.approx(cny(sim, NINGXIA, "hosting", "ml.m5.large"))
    notebook = found["dev-notebook"]
    assert notebook["hourly_cost"] == pytest.approx(cny(sim, BEIJING, "notebook", "ml.t3.medium"))
    assert notebook["currency"] == "CNY"
    summary = doc["summary"]
    assert list(summary["costs"]) == ["CNY"]
    assert summary["costs"]["CNY"]["idle_hourly"] == pytest.approx(
        gpu["hourly_cost"] + ningxia["hourly_cost"]
    )
    assert summary["currency"] == "CNY"
    assert summary["idle_hourly_cost"] == summary["costs"]["CNY"]["idle_hourly"]
    assert summary["idle_hourly_cost_usd"] is None  # nothing priced in USD: null, not 0
    assert summary["price_sources"] == ["live"]
    assert sim.middleware.counts["GetProducts"] >= 3
    table = cli("scan", "--all-regions")
    assert table.exit_code == 0
    assert "¥" in table.stdout and "$" not in table.stdout


def test_offline_prices_are_unknown_with_the_reason(cli: Cli, sim: Simulator, china: str) -> None:
    sim.middleware.counts.clear()
    code, doc = cli.json("scan", "--region", BEIJING, "--offline-prices")
    assert code == 0
    assert "GetProducts" not in sim.middleware.counts
    gpu = by_name(doc)["gpu-idle"]
    assert (gpu["hourly_cost"], gpu["currency"], gpu["price_source"]) == (None, "CNY", "unknown")
    assert "--offline-prices" in gpu["price_note"]
    assert "aws-cn offer files were not read" in gpu["price_note"]
    assert doc["summary"]["idle_with_unknown_cost"] == 1  # gpu-idle (cpu-idle is in Ningxia)
    # Every price unknown: each amount is null beside its currency, never 0.
    summary = doc["summary"]
    assert (summary["currency"], summary["idle_hourly_cost"]) == ("CNY", None)
    assert summary["idle_hourly_cost_usd"] is None
    assert summary["notebooks_without_auto_stop_hourly_cost"] is None
    assert summary["costs"]["CNY"]["idle_hourly"] is None
    table = cli("scan", "--region", BEIJING, "--offline-prices")
    text = " ".join(table.stdout.split())
    assert "0.00" not in text and "$" not in text
    assert "Wasting: 1 idle resource SageSaver would act on, an unknown amount" in text
    assert "No auto-stop guard: 1 running notebook instance, cost unknown (1 x " in text


def test_a_denied_price_list_falls_back_and_says_so(cli: Cli, sim: Simulator, china: str) -> None:
    sim.behaviours.price_list.mode = "denied"
    code, doc = cli.json("scan", "--region", BEIJING)
    assert code == 0  # prices are not what the scan is for: no error, an unknown price
    gpu = by_name(doc)["gpu-idle"]
    assert gpu["price_source"] == "unknown"
    assert "Price List API did not answer" in gpu["price_note"]


def test_run_sends_a_digest_in_yuan(cli: Cli, sim: Simulator, china: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"notify:\n  sns_topic_arn: {china}\n")
    ledger = str(tmp_path / "ledger.sqlite")
    code, doc = cli.json(
        "run", "--all-regions", "--policy", str(policy), "--ledger", ledger, "--apply"
    )
    assert code == 0, doc["errors"]
    total = 2 * cny(sim, BEIJING, "hosting", "ml.g4dn.xlarge") + cny(
        sim, NINGXIA, "hosting", "ml.m5.large"
    )
    [published] = Fleet(sim).published(china)
    # SNS subjects are ASCII: the currency is named by its code there.
    assert published["Subject"] == f"SageSaver: 2 idle endpoints, CNY {total:,.2f}/h wasted"
    [message] = sim_messages(sim, china)
    gpu = 2 * cny(sim, BEIJING, "hosting", "ml.g4dn.xlarge")
    assert f"¥{gpu:,.2f}/h" in message
    assert f"Total: ¥{total:,.2f} per hour" in message
    assert "Total: ¥" in message and "$" not in message


def sim_messages(sim: Simulator, topic: str) -> list[str]:
    return [m["Message"] for m in Fleet(sim).published(topic)]


def test_schedule_run_at_beijing_time_records_prices_for_savings(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", BEIJING)
    fleet.notebook(BEIJING, "dev-stopped", status="Stopped")
    fleet.notebook(NINGXIA, "dev-running", status="InService")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "regions: [cn-north-1, cn-northwest-1]\n"
        "schedules:\n"
        "  office-beijing:\n"
        "    timezone: Asia/Shanghai\n"
        "    periods:\n"
        '      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}\n'
        "    name_contains: dev-\n"
    )
    ledger = str(tmp_path / "ledger.sqlite")
    with run_at(MONDAY_0705_BEIJING):
        code, doc = cli.json(
            "schedule", "run", "--policy", str(policy), "--ledger", ledger, "--apply"
        )  # fmt: skip
    assert code == 0, doc
    assert {a["name"] for a in doc["actions"] if a["applied"]} == {"dev-stopped"}
    # 21:05 in Beijing: the running ones stop; then the savings count in yuan.
    evening = "2026-11-30T13:05:00Z"
    with run_at(evening):
        code, doc = cli.json(
            "schedule", "run", "--policy", str(policy), "--ledger", ledger, "--apply"
        )
    assert code == 0, doc
    assert {a["name"] for a in doc["actions"] if a["applied"]} == {"dev-stopped", "dev-running"}
    savings = cli("savings", "--ledger", ledger, "--output", "json")
    assert savings.exit_code == 0, savings.stderr
    document = json.loads(savings.stdout)
    assert list(document["saved"]) == ["CNY"] and document["saved"]["CNY"] > 0
    assert document["currency"] == "CNY"
    assert document["saved_usd"] is None  # in yuan: null, not 0
    assert all(r["currency"] == "CNY" and r["saved_usd"] is None for r in document["resources"])
    table = cli("savings", "--ledger", ledger)
    assert "Saved ¥" in table.stdout and "$" not in table.stdout


def test_report_in_yuan(cli: Cli, sim: Simulator, china: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints: {action: delete, grace_hours: 0}\n" + f"notify: {{sns_topic_arn: '{china}'}}\n"
    )
    ledger = str(tmp_path / "ledger.sqlite")
    applied = cli(
        "run", "--region", BEIJING, "--policy", str(policy), "--ledger", ledger, "--apply"
    )
    assert applied.exit_code == 0, applied.stdout
    page = tmp_path / "report.html"
    result = cli(
        "report", "--html", str(page), "--region", BEIJING, "--ledger", ledger,
        "--policy", str(policy),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    html = page.read_text()
    assert "Prices in CNY: live" in html
    assert "CNY/h" in html and "¥" in html and "$" not in html
    markdown = cli("report", "--region", BEIJING, "--ledger", ledger)
    assert markdown.exit_code == 0
    assert "- **Saved so far:** ¥" in markdown.stdout and "$" not in markdown.stdout
    # The deleted endpoint comes back from its backup, with its China ARNs.
    restored = cli("restore", "gpu-idle", "--region", BEIJING, "--ledger", ledger, "--apply")
    assert restored.exit_code == 0, restored.stdout
    endpoint = sim.client("sagemaker", BEIJING).describe_endpoint(EndpointName="gpu-idle")
    assert endpoint["EndpointArn"].startswith("arn:aws-cn:sagemaker:cn-north-1:")


def test_deploy_render_for_beijing_passes_cfn_lint(cli: Cli, tmp_path: Path, china: str) -> None:
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"regions: [cn-north-1, cn-northwest-1]\nnotify: {{sns_topic_arn: '{china}'}}\n"
    )
    result = cli("deploy", "render", "--policy", str(policy), "--email", "ops@example.cn")
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "sagesaver.json"
    path.write_text(result.stdout)
    assert lint_file(path, ManualArgs(regions=[BEIJING, NINGXIA])) == []


def test_the_lambda_handler_caches_prices_in_the_ledger_table(
    sim: Simulator, china: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagesaver.aws.prices import TABLE_CACHE_PK
    from sagesaver.aws.session import Aws
    from sagesaver.lambda_handlers import idle_endpoints
    from sagesaver.ledger.dynamodb import create_table

    create_table(Aws(), BEIJING, "ledger")
    monkeypatch.setenv("SAGESAVER_POLICY", f"notify: {{sns_topic_arn: '{china}'}}")
    monkeypatch.setenv("SAGESAVER_REGIONS", "cn-north-1")
    monkeypatch.setenv("SAGESAVER_LEDGER", "dynamodb://ledger")
    monkeypatch.setenv("AWS_REGION", BEIJING)
    result = idle_endpoints({"apply": False}, None)
    [gpu] = [e for e in result["idle_endpoints"] if e["name"] == "gpu-idle"]
    assert (gpu["currency"], gpu["price_source"], gpu["hourly_cost_usd"]) == ("CNY", "live", None)
    items = sim.client("dynamodb", BEIJING).query(
        TableName="ledger",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": TABLE_CACHE_PK}},
    )["Items"]
    cached = {i["sk"]["S"]: json.loads(i["doc"]["S"]) for i in items}
    assert cached["cn-north-1/hosting/ml.g4dn.xlarge"]["currency"] == "CNY"
    # The next run answers from the table: no GetProducts call.
    sim.middleware.counts.clear()
    again = idle_endpoints({"apply": False}, None)
    [same] = [e for e in again["idle_endpoints"] if e["name"] == "gpu-idle"]
    assert same["hourly_cost"] == gpu["hourly_cost"]
    assert "GetProducts" not in sim.middleware.counts


def test_schedule_rules_target_a_china_function(cli: Cli, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "regions: [cn-north-1]\nschedules:\n  seed:\n    start: cron(0 7 ? * MON-FRI *)\n"
        "    stop: cron(0 21 ? * MON-FRI *)\n    name_contains: dev-\n"
    )
    function = "arn:aws-cn:lambda:cn-north-1:123456789012:function:sagesaver-schedule-tick"
    role = "arn:aws-cn:iam::123456789012:role/sagesaver-SchedulerRole"
    result = cli(
        "schedule", "rules", "--policy", str(policy), "--target-arn", function, "--role-arn", role
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rules = json.loads(result.stdout)
    assert {r["Target"]["Arn"] for r in rules} == {function}
