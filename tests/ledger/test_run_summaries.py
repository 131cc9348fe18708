"""The organisation run's summaries in the ledger: both stores (SQLite file, DynamoDB table on
the simulator) keep them by run id and give them back newest first; the table keeps one of a
thousand accounts, over DynamoDB's 400 KB item limit as JSON, compressed and in parts."""

from __future__ import annotations

import json
import random
import sqlite3
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sagesaver.aws.session import Aws
from sagesaver.demo.simulator import Simulator
from sagesaver.ledger import Ledger, SqliteLedger, open_ledger
from sagesaver.ledger.dynamodb import CACHE_PART_BYTES, SUMMARY_PK, create_table

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)
ITEM_LIMIT = 400 * 1024  # DynamoDB's largest item


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, sim: Simulator) -> Ledger:
    if request.param == "sqlite":
        return open_ledger(str(tmp_path / "ledger.sqlite"))
    create_table(Aws(), "us-east-1", "sagesaver-ledger")
    return open_ledger("dynamodb://us-east-1/sagesaver-ledger")


def small(run_id: str, idle: int) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "rows": [
            {
                "account": "111122223333",
                "region": "us-east-1",
                "kind": "endpoint",
                "resources": idle + 1,
                "idle": idle,
                "idle_hourly_cost": {"USD": 0.23 * idle},
                "unknown_cost": 0,
                "acted": 0,
                "failed": 0,
            }
        ],
        "errors": [],
        "missed": [],
        "accounts": 1,
        "complete": True,
    }


def organisation(accounts: int, noise: int = 0) -> dict[str, Any]:
    """A summary of ``accounts`` accounts x 3 regions x 3 kinds; ``noise`` characters of
    incompressible error text per missed item (one per account)."""
    pick = random.Random(7)
    rows = [
        {
            "account": f"{100000000000 + n:012d}",
            "region": region,
            "kind": kind,
            "resources": pick.randint(0, 40),
            "idle": pick.randint(0, 9),
            "idle_hourly_cost": {"USD": round(pick.uniform(0, 60), 6)},
            "unknown_cost": pick.randint(0, 2),
            "acted": pick.randint(0, 3),
            "failed": pick.randint(0, 1),
        }
        for n in range(accounts)
        for region in ("us-east-1", "eu-west-1", "ap-northeast-1")
        for kind in ("endpoint", "studio-app", "training-job")
    ]
    letters = string.ascii_letters + string.digits
    missed = [
        {
            "stage": "plan",
            "account": f"{100000000000 + n:012d}",
            "region": "eu-west-1",
            "error": "".join(pick.choice(letters) for _ in range(noise)),
        }
        for n in range(accounts if noise else 0)
    ]
    return {"rows": rows, "errors": [], "missed": missed, "accounts": accounts, "complete": False}


def test_summaries_come_back_newest_first_by_run(ledger: Ledger) -> None:
    assert ledger.run_summaries() == []
    ledger.record_run_summary("run-a", T0, small("run-a", 1))
    ledger.record_run_summary("run-c", T0 + timedelta(hours=2), small("run-c", 3))
    ledger.record_run_summary("run-b", T0 + timedelta(hours=1), small("run-b", 2))
    found = ledger.run_summaries()
    assert [(s.run_id, s.at) for s in found] == [
        ("run-c", T0 + timedelta(hours=2)),
        ("run-b", T0 + timedelta(hours=1)),
        ("run-a", T0),
    ]
    assert [s.document for s in found] == [small("run-c", 3), small("run-b", 2), small("run-a", 1)]
    assert [s.run_id for s in ledger.run_summaries(limit=2)] == ["run-c", "run-b"]
    assert [s.run_id for s in ledger.run_summaries(since=T0 + timedelta(hours=1))] == [
        "run-c",
        "run-b",
    ]
    assert ledger.run_summaries(since=T0 + timedelta(hours=3)) == []


def test_a_run_recorded_again_is_replaced(ledger: Ledger) -> None:
    """A retried summarise (the Lambda ran twice) leaves one summary of the run."""
    ledger.record_run_summary("run-a", T0, small("run-a", 1))
    ledger.record_run_summary("run-a", T0, small("run-a", 5))
    [only] = ledger.run_summaries()
    assert only.document["rows"][0]["idle"] == 5


def test_a_thousand_accounts_in_three_regions_fit(ledger: Ledger) -> None:
    big = organisation(1000)
    assert len(json.dumps(big).encode()) > ITEM_LIMIT  # as JSON, no DynamoDB item holds it
    ledger.record_run_summary("org-1000", T0, big)
    ledger.record_run_summary("later", T0 + timedelta(minutes=5), small("later", 1))
    older = ledger.run_summaries()[1]
    assert older.run_id == "org-1000" and older.document == big
    assert len(older.document["rows"]) == 9000


def test_a_summary_that_does_not_compress_is_kept_in_parts(sim: Simulator) -> None:
    create_table(Aws(), "us-east-1", "sagesaver-ledger")
    ledger = open_ledger("dynamodb://us-east-1/sagesaver-ledger")
    noisy = organisation(1000, noise=900)  # ~0.9 MB of random text: zlib cannot shrink it
    ledger.record_run_summary("noisy", T0, noisy)
    client = sim.client("dynamodb", "us-east-1")
    parts = client.query(
        TableName="sagesaver-ledger",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{SUMMARY_PK}#noisy"}},
    )["Items"]
    assert len(parts) >= 2  # the head holds part 0; at least two more beside it
    assert all(len(p["data"]["B"]) <= CACHE_PART_BYTES for p in parts)
    [found] = ledger.run_summaries()
    assert found.document == noisy


def test_a_summary_torn_by_a_rewrite_is_left_out(sim: Simulator) -> None:
    """A reader that meets a head whose parts belong to another write skips that summary
    instead of decoding a mix of two."""
    create_table(Aws(), "us-east-1", "sagesaver-ledger")
    ledger = open_ledger("dynamodb://us-east-1/sagesaver-ledger")
    ledger.record_run_summary("older", T0, small("older", 1))
    ledger.record_run_summary("noisy", T0 + timedelta(hours=1), organisation(1000, noise=900))
    client = sim.client("dynamodb", "us-east-1")
    client.update_item(
        TableName="sagesaver-ledger",
        Key={"pk": {"S": f"{SUMMARY_PK}#noisy"}, "sk": {"S": "part#0001"}},
        UpdateExpression="SET #w = :w",
        ExpressionAttributeNames={"#w": "write"},
        ExpressionAttributeValues={":w": {"S": "another-write"}},
    )
    assert [s.run_id for s in ledger.run_summaries()] == ["older"]


def test_a_ledger_of_an_earlier_version_has_no_summaries(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # a ledger written before run summaries existed
        db.execute("CREATE TABLE seen (kind TEXT PRIMARY KEY, at TEXT NOT NULL)")
    assert SqliteLedger(path, read_only=True).run_summaries() == []
    writable = SqliteLedger(path)
    writable.record_run_summary("run-a", T0, small("run-a", 2))
    assert [s.document for s in writable.run_summaries()] == [small("run-a", 2)]
