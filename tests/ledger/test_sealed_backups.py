"""Issue 29: backups in the ledger. Environment values sealed under the table's own KMS key
(in clear, with a warning, where the store has none; names only when asked), a digest checked
before restore acts, and backups of recorded deletions that expire."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.records import TABLE_KEYS, Backup
from sagesaver.core.sealing import BackupRefused, Kept, Unsealed
from sagesaver.demo.simulator import ACCOUNT_ID, Simulator
from sagesaver.ledger import Ledger, SqliteLedger, open_ledger

EAST = "us-east-1"
T0 = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)
SECRET = "sk-live-0123456789"
TABLE = "sealed-ledger"


def document(name: str = "ep") -> dict[str, Any]:
    return {
        "format": 2,
        "region": EAST,
        "endpoint": {"EndpointName": name, "EndpointConfigName": f"{name}-config", "Tags": []},
        "endpoint_config": {"arn": "arn", "spec": {"EndpointConfigName": f"{name}-config"}},
        "models": [
            {
                "spec": {
                    "ModelName": "m",
                    "PrimaryContainer": {
                        "Image": "img",
                        "Environment": {"API_TOKEN": SECRET, "MODE": "fast"},
                    },
                },
                "tags": [],
            }
        ],
        "scaling": {"targets": [], "policies": [], "scheduled_actions": []},
    }


def backup(backup_id: str = "b1", at: datetime = T0, name: str = "ep") -> Backup:
    return Backup(backup_id, at, ACCOUNT_ID, EAST, name, document(name))


def make_table(
    sim: Simulator, key: str | None = None, sse: bool = False, table: str = TABLE
) -> None:
    """The ledger table: under ``key`` (a customer managed key), under the AWS managed key
    (``sse`` without ``key``), or under DynamoDB's own key."""
    extra: dict[str, Any] = {}
    if key is not None or sse:
        extra["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
        if key is not None:
            extra["SSESpecification"]["KMSMasterKeyId"] = key
    sim.client("dynamodb", EAST).create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST", **TABLE_KEYS, **extra
    )


def customer_key(sim: Simulator) -> str:
    arn: str = sim.client("kms", EAST).create_key(Description="the ledger's key")["KeyMetadata"][
        "Arn"
    ]
    return arn


@pytest.fixture
def sealed(sim: Simulator) -> Ledger:
    """A DynamoDB ledger whose table is under a customer managed key."""
    make_table(sim, customer_key(sim))
    return open_ledger(f"dynamodb://{EAST}/{TABLE}")


def raw_items(sim: Simulator) -> str:
    return json.dumps(sim.client("dynamodb", EAST).scan(TableName=TABLE)["Items"])


def backup_item(sim: Simulator, backup_id: str) -> dict[str, Any]:
    items = sim.client("dynamodb", EAST).scan(TableName=TABLE)["Items"]
    [item] = [i for i in items if i["sk"]["S"].endswith(f"#{backup_id}")]
    return item


def put(sim: Simulator, item: dict[str, Any]) -> None:
    sim.client("dynamodb", EAST).put_item(TableName=TABLE, Item=item)


def test_a_sqlite_ledger_keeps_values_in_clear_and_detects_a_changed_backup(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = SqliteLedger(path)
    assert ledger.save_backup(backup()) is Kept.CLEAR
    [found] = ledger.backups("ep")
    assert found.document == document() and found.seal and found.seal["environment"] == "clear"
    opened = ledger.open_backup(found, decrypt=True)
    assert opened.document == document()
    assert "damage" in opened.check  # a digest beside the document: damage, not forgery

    with sqlite3.connect(path) as db:  # someone who can write the file changes the image
        doc = json.loads(db.execute("SELECT document FROM backups").fetchone()[0])
        doc["models"][0]["spec"]["PrimaryContainer"]["Image"] = "attacker/miner"
        db.execute("UPDATE backups SET document = ?", (json.dumps(doc),))
    [changed] = ledger.backups("ep")
    for decrypt in (False, True):
        with pytest.raises(BackupRefused, match=r"backup b1 .*digest"):
            ledger.open_backup(changed, decrypt=decrypt)


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_names_only_keeps_no_value_anywhere(sim: Simulator, tmp_path: Path, store: str) -> None:
    if store == "sqlite":
        ledger: Ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    else:
        make_table(sim, customer_key(sim))
        ledger = open_ledger(f"dynamodb://{EAST}/{TABLE}")
    assert ledger.save_backup(backup(), environment=False) is Kept.NAMES
    raw = (tmp_path / "ledger.sqlite").read_bytes().decode("latin-1") if store == "sqlite" else ""
    raw += raw_items(sim) if store == "dynamodb" else ""
    assert SECRET not in raw and "API_TOKEN" in raw
    [found] = ledger.backups("ep")
    opened = ledger.open_backup(found, decrypt=True)
    assert opened.document["models"][0]["spec"]["PrimaryContainer"]["Environment"] == {
        "API_TOKEN": None,
        "MODE": None,
    }
    assert opened.notes == [
        "model m: environment values not kept (backups.environment: false), so not restored: "
        "API_TOKEN, MODE"
    ]


def test_a_table_under_a_customer_key_seals_the_values_and_the_digest(
    sim: Simulator, sealed: Ledger
) -> None:
    sim.middleware.counts.clear()
    assert sealed.save_backup(backup()) is Kept.SEALED
    assert sim.middleware.counts["Encrypt"] >= 1 and "Decrypt" not in sim.middleware.counts
    raw = raw_items(sim)
    assert SECRET not in raw and "fast" not in raw and "API_TOKEN" in raw
    [found] = sealed.backups("ep")
    env = found.document["models"][0]["spec"]["PrimaryContainer"]["Environment"]
    assert env == {"API_TOKEN": None, "MODE": None}  # names, never values

    sim.middleware.counts.clear()
    dry = sealed.open_backup(found, decrypt=False)  # a dry run decrypts nothing
    assert "Decrypt" not in sim.middleware.counts and "--apply" in dry.check
    assert dry.document["models"][0]["spec"]["PrimaryContainer"]["Environment"] == env
    opened = sealed.open_backup(found, decrypt=True)
    assert opened.document == document()
    assert sim.middleware.counts["Decrypt"] >= 1 and "verified" in opened.check


def test_a_large_environment_is_sealed_in_parts(sim: Simulator, sealed: Ledger) -> None:
    big = backup()
    values = {f"VAR_{i:03d}": f"{SECRET}-{i:03d}-" + "x" * 90 for i in range(100)}
    big.document["models"][0]["spec"]["PrimaryContainer"]["Environment"] = values
    assert sealed.save_backup(big) is Kept.SEALED
    assert sim.middleware.counts["Encrypt"] >= 3  # over 4 KB: several KMS parts
    [found] = sealed.backups("ep")
    opened = sealed.open_backup(found, decrypt=True)
    assert opened.document["models"][0]["spec"]["PrimaryContainer"]["Environment"] == values


def test_forged_and_altered_backups_in_the_table_are_refused(
    sim: Simulator, sealed: Ledger
) -> None:
    sealed.save_backup(backup("b1"))
    sealed.save_backup(backup("b2", T0 + timedelta(hours=1), name="other"))
    item = backup_item(sim, "b1")

    # 1. The clear part altered (another image): the sealed digest does not match.
    doc = json.loads(item["doc"]["S"])
    doc["document"]["models"][0]["spec"]["PrimaryContainer"]["Image"] = "attacker/miner"
    put(sim, {**item, "doc": {"S": json.dumps(doc)}})
    [altered] = sealed.backups("ep")
    with pytest.raises(BackupRefused, match=r"backup b1 .*digest"):
        sealed.open_backup(altered, decrypt=True)

    # 2. A backup planted without a seal (as an earlier version wrote them): refused unless
    #    asked, since anyone who can write the table could have written it.
    planted = json.loads(item["doc"]["S"])
    planted["id"], planted["name"] = "planted", "victim"
    planted.pop("seal")
    put(sim, {"pk": {"S": "backup"}, "sk": {"S": f"{planted['at']}#planted"},
              "doc": {"S": json.dumps(planted)}})  # fmt: skip
    [found] = sealed.backups("victim")
    with pytest.raises(Unsealed, match=r"backup planted .*--accept-unsealed"):
        sealed.open_backup(found, decrypt=False)
    accepted = sealed.open_backup(found, decrypt=True, accept_unsealed=True)
    assert accepted.warning and "planted" in accepted.warning

    # 3. A genuine envelope copied onto another backup: its encryption context differs.
    other = json.loads(backup_item(sim, "b2")["doc"]["S"])
    original = json.loads(item["doc"]["S"])
    other["seal"] = original["seal"]
    other["document"] = original["document"]
    put(sim, {**backup_item(sim, "b2"), "doc": {"S": json.dumps(other)}})
    [copied] = sealed.backups("other")
    with pytest.raises(BackupRefused, match=r"backup b2 .*does not open"):
        sealed.open_backup(copied, decrypt=True)

    # 4. An envelope sealed under another key (the forger's own): never opened.
    forger = customer_key(sim)
    kms = sim.client("kms", EAST)
    seal = original["seal"]
    context = {"sagesaver-backup": "b1", "sagesaver-endpoint": "ep", "sagesaver-region": EAST}
    blob = kms.encrypt(
        KeyId=forger,
        Plaintext=json.dumps({"digest": "0" * 64, "environment": {}}).encode(),
        EncryptionContext={**context, "sagesaver-part": "1/1"},
    )["CiphertextBlob"]
    ledger_key = seal["kms"]["key"]
    seal["kms"] = {"key": forger, "parts": [base64.b64encode(blob).decode()]}
    put(sim, {**item, "doc": {"S": json.dumps({**original, "seal": seal})}})
    [forged] = sealed.backups("ep")
    with pytest.raises(BackupRefused, match=r"backup b1 .*key"):
        sealed.open_backup(forged, decrypt=True)
    seal["kms"]["key"] = ledger_key  # naming the ledger's key does not help: KMS refuses
    put(sim, {**item, "doc": {"S": json.dumps({**original, "seal": seal})}})
    [forged] = sealed.backups("ep")
    with pytest.raises(BackupRefused, match=r"backup b1 .*does not open"):
        sealed.open_backup(forged, decrypt=True)


def test_a_table_without_a_customer_key_keeps_values_in_clear(sim: Simulator) -> None:
    make_table(sim)
    ledger = open_ledger(f"dynamodb://{EAST}/{TABLE}")
    sim.middleware.counts.clear()
    assert ledger.save_backup(backup()) is Kept.CLEAR
    assert "Encrypt" not in sim.middleware.counts
    [found] = ledger.backups("ep")
    assert ledger.open_backup(found, decrypt=True).document == document()


def test_the_aws_managed_key_of_a_table_cannot_seal(sim: Simulator) -> None:
    """``alias/aws/dynamodb`` lets only DynamoDB use it: the values stay in clear (and the run
    says so) rather than every backup failing."""
    from moto.kms.models import kms_backends

    make_table(sim, sse=True)
    backend = kms_backends[ACCOUNT_ID][EAST]
    backend.keys[backend.get_key_id_from_alias("alias/aws/dynamodb")].key_manager = "AWS"
    ledger = open_ledger(f"dynamodb://{EAST}/{TABLE}")
    sim.middleware.counts.clear()
    assert ledger.save_backup(backup()) is Kept.CLEAR
    assert "Encrypt" not in sim.middleware.counts


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_only_backups_of_recorded_deletions_expire(
    sim: Simulator, tmp_path: Path, store: str
) -> None:
    if store == "sqlite":
        ledger: Ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    else:
        make_table(sim, customer_key(sim))
        ledger = open_ledger(f"dynamodb://{EAST}/{TABLE}")
    ledger.save_backup(backup("pending"))  # its deletion never recorded: kept for ever
    ledger.save_backup(backup("recorded"))
    until = T0 + timedelta(days=1)
    ledger.keep_backup_until("recorded", until)
    ledger.keep_backup_until("missing", until)  # nothing to mark is not an error
    by_id = {b.id: b for b in ledger.backups("ep")}
    assert by_id["recorded"].expires == until and by_id["pending"].expires is None
    if store == "dynamodb":  # DynamoDB's TTL deletes it: an epoch number attribute
        item = backup_item(sim, "recorded")
        assert item["expires_at"] == {"N": str(int(until.timestamp()))}
        assert "expires_at" not in backup_item(sim, "pending")
    else:  # the file prunes what expired whenever it writes a backup
        ledger.save_backup(backup("later", T0 + timedelta(days=2)))
        assert sorted(b.id for b in ledger.backups("ep")) == ["later", "pending"]
