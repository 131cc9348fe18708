"""Digests delivered to chat webhooks on the simulator: each platform's format received by a
local receiver that checks it as the platform does, the URLs and signing secrets read from SSM
Parameter Store and Secrets Manager and never printed or logged, a failed required channel
stopping a deletion, an optional one not, owners' digests to their own channels."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.permissions import CAPABILITIES, scoped_document
from sagesaver.core.policy import parse_policy
from sagesaver.demo.simulator import ACCOUNT_ID, Fleet, Simulator
from sagesaver.lambda_handlers import RunFailed, idle_endpoints
from tests.chat_receivers import TYPES, Receiver
from tests.chat_receivers import receivers as receivers  # the fixture
from tests.conftest import Cli

pytestmark = pytest.mark.slow

EAST = "us-east-1"
OLD = timedelta(days=5)
DING_SECRET = "SECding0123456789abcdefSECRET"
FEISHU_SECRET = "feishuSigningSECRET42"


def store(sim: Simulator, receivers: dict[str, Receiver]) -> None:
    """The webhook URLs and signing secrets where the policy says they are."""
    ssm = sim.client("ssm", EAST)
    secrets = sim.client("secretsmanager", EAST)
    for kind in ("slack", "wecom", "feishu", "teams"):
        ssm.put_parameter(Name=f"/sagesaver/{kind}", Value=receivers[kind].url, Type="SecureString")
    secrets.create_secret(Name="sagesaver/dingtalk", SecretString=receivers["dingtalk"].url)
    ssm.put_parameter(Name="/sagesaver/ding-sign", Value=DING_SECRET, Type="SecureString")
    secrets.create_secret(Name="sagesaver/feishu-sign", SecretString=FEISHU_SECRET)
    receivers["dingtalk"].secret = DING_SECRET
    receivers["feishu"].secret = FEISHU_SECRET


ALL_CHANNELS = """
    - {type: slack, webhook: "ssm:/sagesaver/slack", required: true}
    - type: dingtalk
      webhook: "secretsmanager:sagesaver/dingtalk"
      secret: "ssm:/sagesaver/ding-sign"
    - {type: wecom, webhook: "ssm:/sagesaver/wecom"}
    - type: feishu
      webhook: "ssm:/sagesaver/feishu"
      secret: "secretsmanager:sagesaver/feishu-sign"
    - {type: teams, webhook: "ssm:/sagesaver/teams"}
"""


def write_policy(tmp_path: Path, notify: str, delete: bool = False) -> str:
    path = tmp_path / "policy.yaml"
    endpoints = "endpoints:\n  action: delete\n  grace_hours: 24\n" if delete else ""
    path.write_text(endpoints + "notify:\n" + notify)
    return str(path)


def run(cli: Cli, policy: str, ledger: Path, *extra: str) -> Any:
    return cli(
        "run", "--region", EAST, "--policy", policy, "--ledger", str(ledger), "--output", "json",
        *extra,
    )  # fmt: skip


def leaked(receivers: dict[str, Receiver], *texts: str) -> list[str]:
    """Which webhook URLs, tokens or secrets appear in ``texts``."""
    secrets = [DING_SECRET, FEISHU_SECRET, "127.0.0.1"]
    for receiver in receivers.values():
        secrets += [receiver.url, receiver.url.rsplit("=", 1)[-1].rsplit("/", 1)[-1]]
    return [s for s in secrets if any(s in text for text in texts)]


def announced_and_due(sim: Simulator, ledger: Path, arn: str) -> None:
    """The endpoint as a run leaves it once its announced deadline has passed."""
    from sagesaver.core.grace import SCHEDULED_TAG, announcement_key, tag_value
    from sagesaver.core.model import Kind, Resource
    from sagesaver.ledger import open_ledger

    sagemaker = sim.client("sagemaker", EAST)
    described = sagemaker.describe_endpoint(EndpointName=arn.split("/")[-1])
    created, modified = described["CreationTime"], described["LastModifiedTime"]
    at = modified + timedelta(minutes=1)
    deadline = at + timedelta(hours=24)
    sagemaker.add_tags(
        ResourceArn=arn, Tags=[{"Key": SCHEDULED_TAG, "Value": tag_value("delete", deadline)}]
    )
    resource = Resource(Kind.ENDPOINT, "-", arn, EAST, ACCOUNT_ID, "InService", created, created)
    open_ledger(str(ledger)).record_announcement(
        announcement_key(resource), deadline, at, ["message-1"]
    )


def endpoints(sim: Simulator) -> set[str]:
    found = sim.client("sagemaker", EAST).list_endpoints()["Endpoints"]
    return {e["EndpointName"] for e in found}


def test_every_format_arrives_signed_and_no_secret_is_printed_or_logged(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    receivers: dict[str, Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store(sim, receivers)
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    policy = write_policy(tmp_path, "  channels:" + ALL_CHANNELS)
    caplog.set_level(logging.DEBUG, logger="sagesaver")  # SageSaver's own logs, every level
    sim.middleware.counts.clear()
    result = run(cli, policy, tmp_path / "ledger.sqlite", "--apply", "--verbose")
    assert result.exit_code == 0, result.stderr + result.stdout
    doc = json.loads(result.stdout)
    assert doc["applied"] is True
    assert [c["channel"] for c in doc["channels"]] == [
        "slack (ssm:/sagesaver/slack)",
        "dingtalk (secretsmanager:sagesaver/dingtalk)",
        "wecom (ssm:/sagesaver/wecom)",
        "feishu (ssm:/sagesaver/feishu)",
        "teams (ssm:/sagesaver/teams)",
    ]
    assert all(c["ok"] and c["posts"] == 1 for c in doc["channels"])
    for kind in TYPES:
        receiver = receivers[kind]
        assert receiver.problems == [] and len(receiver.posts) == 1, kind
        assert "idle-one" in receiver.texts()[0], kind
    # each signature carries the run's time (within the test's minute)
    ding = receivers["dingtalk"].posts[0].query
    assert abs(int(ding["timestamp"]) / 1000 - now.timestamp()) < 120
    feishu = receivers["feishu"].posts[0].body
    assert abs(int(feishu["timestamp"]) - now.timestamp()) < 120
    # the reads: decrypted parameters, secrets by name, each once
    assert sim.middleware.counts["GetParameter"] == 5
    assert sim.middleware.counts["GetSecretValue"] == 2
    assert leaked(receivers, result.stdout, result.stderr, caplog.text) == []
    # every call is one `sagesaver permissions` grants for this policy
    chat_policy = parse_policy(Path(policy).read_text())
    notify = scoped_document(["notify"], account=ACCOUNT_ID, policy=chat_policy)
    granted = {a for actions in CAPABILITIES.values() for a in actions}
    granted |= {a for statement in notify["Statement"] for a in statement["Action"]}
    assert set(sim.middleware.counts) <= {a.split(":", 1)[1] for a in granted}

    # an unchanged digest is not sent again within repeat_hours, to the channels either
    again = run(cli, policy, tmp_path / "ledger.sqlite", "--apply")
    assert again.exit_code == 0
    assert [len(r.posts) for r in receivers.values()] == [1] * 5


def test_a_failed_required_channel_stops_the_deletion_and_the_run_exits_1(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    receivers: dict[str, Receiver],
) -> None:
    store(sim, receivers)
    topic = fleet.topic(EAST, "admins")
    ledger = tmp_path / "ledger.sqlite"
    arn = fleet.endpoint(EAST, "due-one", changed=now - OLD)
    announced_and_due(sim, ledger, arn)
    receivers["slack"].fail_with = 500  # the required channel: down, retried once
    notify = (
        f"  sns_topic_arn: {topic}\n  channels:\n"
        '    - {type: slack, webhook: "ssm:/sagesaver/slack", required: true}\n'
        '    - {type: teams, webhook: "ssm:/sagesaver/teams"}\n'
    )
    result = run(cli, write_policy(tmp_path, notify, delete=True), ledger, "--apply")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert "due-one" in endpoints(sim)  # still there
    step = next(s for s in doc["enforcement"] if s["name"] == "due-one")
    assert step["applied"] is False and "could not be sent" in step["outcome"]
    assert doc["applied"] is False
    assert receivers["slack"].attempts == 2  # one retry on a 5xx
    assert len(receivers["teams"].posts) == 1 and len(fleet.published(topic)) == 1
    errors = [e for e in doc["errors"] if e["operation"] == "ChatWebhook"]
    assert [e["message"] for e in errors] == [
        "slack (ssm:/sagesaver/slack): HTTP 500, after a retry"
    ]
    assert leaked(receivers, result.stdout, result.stderr) == []

    # the channel is back: the next run delivers, and acts
    receivers["slack"].fail_with = None
    result = run(cli, write_policy(tmp_path, notify, delete=True), ledger, "--apply")
    assert result.exit_code == 0, result.stdout
    assert "due-one" not in endpoints(sim)
    assert len(receivers["slack"].posts) == 1


def test_an_optional_channel_that_fails_does_not_stop_the_deletion(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    receivers: dict[str, Receiver],
) -> None:
    store(sim, receivers)
    ledger = tmp_path / "ledger.sqlite"
    arn = fleet.endpoint(EAST, "due-one", changed=now - OLD)
    announced_and_due(sim, ledger, arn)
    receivers["wecom"].refuse = "invalid webhook url"  # the platform says no (errcode)
    notify = (
        "  channels:\n"  # no SNS topic: the required channel decides
        '    - {type: feishu, webhook: "ssm:/sagesaver/feishu", required: true,'
        ' secret: "secretsmanager:sagesaver/feishu-sign"}\n'
        '    - {type: wecom, webhook: "ssm:/sagesaver/wecom"}\n'
    )
    result = run(cli, write_policy(tmp_path, notify, delete=True), ledger, "--apply")
    doc = json.loads(result.stdout)
    assert "due-one" not in endpoints(sim)  # deleted after the required channel took it
    assert result.exit_code == 1  # the optional channel's failure is reported all the same
    assert [e["message"] for e in doc["errors"]] == [
        "wecom (ssm:/sagesaver/wecom): errcode 310000: invalid webhook url (optional channel)"
    ]
    assert receivers["wecom"].attempts == 1  # a platform's refusal is not retried
    assert receivers["feishu"].problems == [] and len(receivers["feishu"].posts) == 1


def test_no_channel_taking_it_means_nothing_is_deleted(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    receivers: dict[str, Receiver],
) -> None:
    store(sim, receivers)
    ledger = tmp_path / "ledger.sqlite"
    announced_and_due(sim, ledger, fleet.endpoint(EAST, "due-one", changed=now - OLD))
    receivers["teams"].stop()  # nobody listening: connection refused, retried once
    notify = '  channels:\n    - {type: teams, webhook: "ssm:/sagesaver/teams"}\n'
    result = run(cli, write_policy(tmp_path, notify, delete=True), ledger, "--apply")
    assert result.exit_code == 1
    assert "due-one" in endpoints(sim)
    messages = [e["message"] for e in json.loads(result.stdout)["errors"]]
    assert messages == [
        "teams (ssm:/sagesaver/teams): connection failed (ConnectionRefusedError), after a "
        "retry (optional channel)"
    ]


def test_unreadable_references_and_plain_http_urls_are_refused_by_name(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    receivers: dict[str, Receiver],
) -> None:
    ssm = sim.client("ssm", EAST)
    ssm.put_parameter(
        Name="/hooks/plain", Value="http://chat.example.com/hook?key=PLAINKEY", Type="String"
    )
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    notify = (
        "  channels:\n"
        '    - {type: slack, webhook: "ssm:/hooks/missing", required: true}\n'
        '    - {type: teams, webhook: "ssm:/hooks/plain"}\n'
    )
    result = run(cli, write_policy(tmp_path, notify), tmp_path / "ledger.sqlite", "--apply")
    assert result.exit_code == 1
    messages = [e["message"] for e in json.loads(result.stdout)["errors"]]
    assert messages[0].startswith(
        "slack (ssm:/hooks/missing): cannot read ssm:/hooks/missing in us-east-1: ParameterNotFound"
    )
    assert messages[1].startswith("teams (ssm:/hooks/plain): the webhook stored is not an https")
    assert "PLAINKEY" not in result.stdout + result.stderr
    assert "chat.example.com" not in result.stdout + result.stderr


def test_owners_digests_go_to_their_own_channels(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    receivers: dict[str, Receiver],
) -> None:
    store(sim, receivers)
    fleet.endpoint(EAST, "a-model", tags={"team": "team-a"}, changed=now - OLD)
    fleet.endpoint(EAST, "b-model", tags={"team": "team-b"}, changed=now - OLD)
    notify = (
        "  owner_tag: team\n  channels:\n"
        '    - {type: slack, webhook: "ssm:/sagesaver/slack"}\n'
        '    - {type: wecom, webhook: "ssm:/sagesaver/wecom", owner: team-a}\n'
        '    - {type: teams, webhook: "ssm:/sagesaver/teams", owner: team-c}\n'
    )
    result = run(cli, write_policy(tmp_path, notify), tmp_path / "ledger.sqlite", "--apply")
    assert result.exit_code == 0, result.stdout
    admin = receivers["slack"].texts()
    assert len(admin) == 1 and "a-model" in admin[0] and "b-model" in admin[0]
    team_a = receivers["wecom"].texts()
    assert len(team_a) == 1 and "a-model" in team_a[0] and "b-model" not in team_a[0]
    assert receivers["teams"].posts == []  # team-c has nothing idle
    owners = {o["owner"]: o["applied"] for o in json.loads(result.stdout)["owner_notifications"]}
    assert owners == {"team-a": True, "team-b": False}  # team-b: no channel, no topic


def test_a_long_digest_is_split_for_wecom_and_each_post_is_taken(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    receivers: dict[str, Receiver],
) -> None:
    store(sim, receivers)
    for index in range(30):
        fleet.endpoint(EAST, f"tuili-fuwu-moxing-{index:02d}-" + "x" * 40, changed=now - OLD)
    notify = '  channels:\n    - {type: wecom, webhook: "ssm:/sagesaver/wecom"}\n'
    result = run(cli, write_policy(tmp_path, notify), tmp_path / "ledger.sqlite", "--apply")
    assert result.exit_code == 0, result.stdout
    wecom = receivers["wecom"]
    assert wecom.problems == [] and len(wecom.posts) > 1
    assert all(len(t.encode()) <= 4096 for t in wecom.texts())
    named = "".join(wecom.texts())
    assert all(f"tuili-fuwu-moxing-{i:02d}-" in named for i in range(30))


def test_the_lambda_delivers_to_the_channels_as_the_cli_does(
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    receivers: dict[str, Receiver],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store(sim, receivers)
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    monkeypatch.setenv("SAGESAVER_POLICY", "notify:\n  channels:" + ALL_CHANNELS)
    monkeypatch.setenv("SAGESAVER_REGIONS", EAST)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    summary = idle_endpoints({}, None)
    assert summary["notified"] is True
    assert [c["ok"] for c in summary["channels"]] == [True] * 5
    assert all(len(receivers[k].posts) == 1 and not receivers[k].problems for k in TYPES)
    receivers["slack"].fail_with = 404  # the required channel refuses: the run fails
    with pytest.raises(RunFailed, match=r"slack \(ssm:/sagesaver/slack\): HTTP 404"):
        idle_endpoints({}, None)
    logged = capsys.readouterr().out
    assert '"event": "error"' in logged
    assert leaked(receivers, logged, json.dumps(summary)) == []
