"""Issue 29: a deleted endpoint's secrets and the backups restore trusts.

The model's container ``Environment`` (a secret here) is sealed under the ledger table's own KMS
key and opened only by ``restore --apply``; a SQLite ledger keeps it in clear and the run says
so; ``backups.environment: false`` keeps names only. ``restore`` refuses (exit 2), before any
create call, a backup whose digest or envelope does not verify, and one without a seal unless
``--accept-unsealed``. With ``backups.keep_days`` the backups of recorded deletions expire.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.aws import endpoints as aws_endpoints
from sagesaver.demo.simulator import IMAGE, ROLE_ARN, Fault, Fleet, Simulator
from sagesaver.ledger import Backup, SqliteLedger
from sagesaver.pipelines import acts
from tests.conftest import Cli
from tests.ledger.test_sealed_backups import make_table
from tests.pipelines.test_enforce import announced_and_due

EAST = "us-east-1"
NAME = "tokened"
SECRET = "sk-live-4f9a2b7c1d"
ENVIRONMENT = {"API_TOKEN": SECRET, "MODE": "fast"}
TABLE = "team-ledger"
TABLE_LEDGER = f"dynamodb://{EAST}/{TABLE}"
OLD = timedelta(days=5)
LATER = acts.LEASE + timedelta(minutes=5)


def seed(fleet: Fleet, now: datetime) -> str:
    """An idle endpoint whose model carries a secret in its container's environment."""
    fleet.sim.client("sagemaker", EAST).create_model(
        ModelName="demo-model",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": IMAGE, "Environment": ENVIRONMENT},
    )
    fleet._models.add((EAST, "demo-model"))
    return fleet.endpoint(EAST, NAME, changed=now - OLD)


def table_under_its_own_key(sim: Simulator) -> None:
    key = sim.client("kms", EAST).create_key()["KeyMetadata"]["Arn"]
    make_table(sim, key=key, table=TABLE)


def policy_file(fleet: Fleet, tmp_path: Path, extra: str = "") -> str:
    topic = fleet.topic(EAST, "admins")
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"endpoints: {{action: delete, grace_hours: 24}}\nnotify: {{sns_topic_arn: '{topic}'}}\n"
        + extra
    )
    return str(path)


def delete_it(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path, ledger: str,
    extra: str = "",
) -> Any:  # fmt: skip
    """The endpoint backed up into ``ledger`` and deleted by a real run; its result."""
    arn = seed(fleet, now)
    policy = policy_file(fleet, tmp_path, extra)
    announced_and_due(sim, ledger, arn)
    result = cli("run", "--region", EAST, "--policy", policy, "--ledger", ledger, "--apply",
                 "--output", "json")  # fmt: skip
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, doc["errors"]
    assert doc["enforcement"][0]["outcome"].startswith("deleted")
    return result


def wipe(sim: Simulator) -> None:
    sm = sim.client("sagemaker", EAST)
    sm.delete_endpoint_config(EndpointConfigName=f"{NAME}-config")
    sm.delete_model(ModelName="demo-model")


def creates(sim: Simulator) -> list[str]:
    return [op for op in sim.middleware.counts if op.startswith("Create")]


def table_items(sim: Simulator) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = sim.client("dynamodb", EAST).scan(TableName=TABLE)["Items"]
    return items


def test_a_table_under_its_own_key_seals_the_secret_and_only_apply_opens_it(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    table_under_its_own_key(sim)
    ran = delete_it(cli, sim, fleet, now, tmp_path, TABLE_LEDGER)
    assert "in clear" not in ran.stderr
    stored = json.dumps(table_items(sim))
    assert SECRET not in stored and "API_TOKEN" in stored
    wipe(sim)

    sim.middleware.counts.clear()
    dry = cli("restore", NAME, "--ledger", TABLE_LEDGER)
    assert dry.exit_code == 0, dry.stderr
    assert "environment API_TOKEN, MODE" in dry.stdout  # the names, for the reviewer
    assert SECRET not in dry.stdout + dry.stderr and "Decrypt" not in sim.middleware.counts

    code, done = cli.json("restore", NAME, "--ledger", TABLE_LEDGER, "--apply")
    assert code == 0, done["errors"]
    assert sim.middleware.counts["Decrypt"] >= 1
    assert any("verified" in line for line in done["steps"])
    model = sim.client("sagemaker", EAST).describe_model(ModelName="demo-model")
    assert model["PrimaryContainer"]["Environment"] == ENVIRONMENT
    assert SECRET not in json.dumps(done)


@pytest.mark.parametrize("denied", ["DescribeKey", "Decrypt"])
def test_a_key_that_cannot_be_used_refuses_the_restore_before_any_create_call(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path, denied: str
) -> None:
    table_under_its_own_key(sim)
    delete_it(cli, sim, fleet, now, tmp_path, TABLE_LEDGER)
    wipe(sim)

    def deny(operation: str, region: str, environ: Any) -> Fault | None:
        if operation == denied:
            return Fault(400, "AccessDeniedException", f"not allowed: kms:{denied}")
        return None

    sim.middleware.counts.clear()
    sim.middleware.fault = deny
    result = cli("restore", NAME, "--ledger", TABLE_LEDGER, "--apply")
    sim.middleware.fault = None
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "AccessDenied" in result.stderr and "nothing was created" in result.stderr
    assert creates(sim) == []


def test_a_sqlite_ledger_keeps_the_values_in_clear_and_the_run_says_so(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "ledger.sqlite")
    ran = delete_it(cli, sim, fleet, now, tmp_path, ledger)
    assert "warning" in ran.stderr and "in clear" in ran.stderr
    assert "backups.environment: false" in ran.stderr and SECRET not in ran.stderr
    wipe(sim)
    dry = cli("restore", NAME, "--ledger", ledger)
    assert dry.exit_code == 0 and "environment API_TOKEN, MODE" in dry.stdout
    assert SECRET not in dry.stdout


def test_names_only_restores_without_the_values_and_says_which(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "ledger.sqlite")
    ran = delete_it(cli, sim, fleet, now, tmp_path, ledger, "backups: {environment: false}\n")
    assert "in clear" not in ran.stderr
    assert SECRET.encode() not in Path(ledger).read_bytes()
    wipe(sim)
    code, done = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 0, done["errors"]
    lines = "\n".join(done["steps"])
    assert "not restored: API_TOKEN, MODE" in lines
    model = sim.client("sagemaker", EAST).describe_model(ModelName="demo-model")
    assert not model["PrimaryContainer"].get("Environment")


def alter_table_backup(sim: Simulator) -> str:
    """Someone who can write the table points the backup's model at another image."""
    [item] = [i for i in table_items(sim) if i["pk"]["S"] == "backup"]
    doc = json.loads(item["doc"]["S"])
    doc["document"]["models"][0]["spec"]["PrimaryContainer"]["Image"] = "attacker/miner"
    sim.client("dynamodb", EAST).put_item(
        TableName=TABLE, Item={**item, "doc": {"S": json.dumps(doc)}}
    )
    return str(doc["id"])


def plant_table_backup(sim: Simulator) -> str:
    """Someone who can write the table (not use its key) plants a backup of their own."""
    [item] = [i for i in table_items(sim) if i["pk"]["S"] == "backup"]
    doc = json.loads(item["doc"]["S"])
    doc["id"] = f"{NAME}-29991231T000000Z-planted0"
    doc["at"] = "2999-12-31T00:00:00+00:00"
    doc["document"]["models"][0]["spec"]["PrimaryContainer"]["Image"] = "attacker/miner"
    doc.pop("seal")
    sim.client("dynamodb", EAST).put_item(
        TableName=TABLE,
        Item={"pk": {"S": "backup"}, "sk": {"S": f"{doc['at']}#{doc['id']}"},
              "doc": {"S": json.dumps(doc)}},
    )  # fmt: skip
    return str(doc["id"])


def alter_file_backup(ledger: str) -> str:
    with sqlite3.connect(ledger) as db:
        backup_id, text = db.execute("SELECT id, document FROM backups").fetchone()
        doc = json.loads(text)
        doc["models"][0]["spec"]["PrimaryContainer"]["Image"] = "attacker/miner"
        db.execute("UPDATE backups SET document = ?", (json.dumps(doc),))
    return str(backup_id)


@pytest.mark.parametrize(
    ("store", "forge", "problem", "dry_run_sees_it"),
    [
        # The digest is inside the envelope: only --apply decrypts it (the dry run says so).
        ("table", alter_table_backup, "digest", False),
        ("table", plant_table_backup, "--accept-unsealed", True),
        ("file", alter_file_backup, "digest", True),
    ],
)
def test_a_planted_or_altered_backup_is_refused_before_any_create_call(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path,
    store: str, forge: Any, problem: str, dry_run_sees_it: bool,
) -> None:  # fmt: skip
    if store == "table":
        table_under_its_own_key(sim)
        ledger = TABLE_LEDGER
    else:
        ledger = str(tmp_path / "ledger.sqlite")
    delete_it(cli, sim, fleet, now, tmp_path, ledger)
    wipe(sim)
    backup_id = forge(sim) if store == "table" else forge(ledger)
    sim.middleware.counts.clear()
    dry = cli("restore", NAME, "--ledger", ledger)
    if dry_run_sees_it:
        assert dry.exit_code == 2 and problem in dry.stderr, (dry.stdout, dry.stderr)
    else:
        assert dry.exit_code == 0 and "restore --apply decrypts it and checks" in dry.stdout
    result = cli("restore", NAME, "--ledger", ledger, "--apply")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"backup {backup_id}" in result.stderr and problem in result.stderr
    assert "nothing was created" in result.stderr or problem == "--accept-unsealed"
    assert creates(sim) == [] and result.stdout == ""


def test_a_backup_of_an_earlier_version_is_restored_only_when_asked(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "ledger.sqlite")
    delete_it(cli, sim, fleet, now, tmp_path, ledger)
    wipe(sim)
    with sqlite3.connect(ledger) as db:  # as a version before seals wrote it
        db.execute("UPDATE backups SET seal = NULL")
    sim.middleware.counts.clear()
    refused = cli("restore", NAME, "--ledger", ledger, "--apply")
    assert refused.exit_code == 2 and "no seal" in refused.stderr
    assert creates(sim) == []
    accepted = cli("restore", NAME, "--ledger", ledger, "--apply", "--accept-unsealed")
    assert accepted.exit_code == 0, accepted.stderr
    assert "warning" in accepted.stderr and "no seal" in accepted.stderr
    model = sim.client("sagemaker", EAST).describe_model(ModelName="demo-model")
    assert model["PrimaryContainer"]["Environment"] == ENVIRONMENT


def test_a_backup_expires_only_once_its_deletion_is_recorded(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    table_under_its_own_key(sim)
    delete_it(cli, sim, fleet, now, tmp_path, TABLE_LEDGER, "backups: {keep_days: 30}\n")
    [item] = [i for i in table_items(sim) if i["pk"]["S"] == "backup"]
    expires = int(item["expires_at"]["N"])
    assert abs(expires - (time.time() + 30 * 86400)) < 3600
    code, listed = cli.json("backups", "--ledger", TABLE_LEDGER)
    assert code == 0 and listed["backups"][0]["expires"] is not None
    assert listed["backups"][0]["environment"] == "sealed"


def test_a_pending_backup_never_expires(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A run dies right after the delete: its backup stays pending, with no expiry, however
    long; the next run records the deletion (confirmed) and the backup then expires."""
    ledger = str(tmp_path / "ledger.sqlite")
    arn = seed(fleet, now)
    policy = policy_file(fleet, tmp_path, "backups: {keep_days: 1}\n")
    announced_and_due(sim, ledger, arn)

    class Killed(BaseException):
        """The process dies here."""

    real_delete = aws_endpoints.delete

    def delete_then_die(*args: Any, **kwargs: Any) -> Any:
        real_delete(*args, **kwargs)
        raise Killed

    from sagesaver.cli import app

    args = ["run", "--region", EAST, "--policy", policy, "--ledger", ledger, "--apply"]
    with monkeypatch.context() as patch, time_machine.travel(now, tick=False):
        patch.setattr(aws_endpoints, "delete", delete_then_die)
        patch.setattr(acts, "_release", lambda *a: None)  # a dead process cleans nothing
        with pytest.raises(Killed):
            cli.runner.invoke(app, args, catch_exceptions=False)
    [pending] = SqliteLedger(Path(ledger)).backups(NAME)
    assert pending.expires is None
    later = now + timedelta(days=3)  # long after keep_days: a write prunes what expired
    SqliteLedger(Path(ledger)).save_backup(Backup("other", later, pending.account, EAST, "x", {}))
    assert [b.id for b in SqliteLedger(Path(ledger)).backups(NAME)] == [pending.id]
    with time_machine.travel(now + LATER, tick=False):
        result = cli(*args)
    assert result.exit_code == 0, result.stdout
    [confirmed] = SqliteLedger(Path(ledger)).backups(NAME)
    assert confirmed.id == pending.id and confirmed.expires is not None
    assert confirmed.expires > now + LATER
