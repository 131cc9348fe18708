"""The ledger in a DynamoDB table (``--ledger dynamodb://TABLE`` or ``dynamodb://REGION/TABLE``).

One table, string keys ``pk`` (partition) and ``sk`` (sort). A claim is a conditional put
(``attribute_not_exists(pk)``): DynamoDB lets exactly one of any number of concurrent runs
create the item, which is what guarantees that no resource is acted on twice. Entries and
backups are stored as JSON documents in a ``doc`` attribute.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from sagesaver.aws.session import Aws
from sagesaver.errors import InputError
from sagesaver.ledger import Backup, Entry

ENTRY_PK = "entry"
BACKUP_PK = "backup"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def create_table(aws: Aws, region: str, table: str) -> None:
    """Create the ledger table (on-demand capacity) and wait until it exists."""
    client = aws.client("dynamodb", region)
    client.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table)


class DynamoLedger:
    """A :class:`~sagesaver.ledger.Ledger` in a DynamoDB table."""

    def __init__(self, aws: Aws, region: str, table: str) -> None:
        self.client = aws.client("dynamodb", region)
        self.table = table
        try:
            self.client.describe_table(TableName=table)
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", str(exc))
            raise InputError(f"--ledger dynamodb://{region}/{table}: {message}") from exc

    def _query(self, pk: str, since: str | None = None) -> list[dict[str, Any]]:
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": pk}}
        if since is not None:
            condition += " AND sk >= :since"
            values[":since"] = {"S": since}
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        ):
            items.extend(page["Items"])
        return items

    def last_schedule_run(self, schedule: str, region: str) -> datetime | None:
        """When ``schedule`` last ran in ``region``, or None."""
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"schedule#{schedule}#{region}"}, "sk": {"S": "run"}},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else datetime.fromisoformat(item["at"]["S"])

    def set_schedule_run(self, schedule: str, region: str, at: datetime) -> None:
        """Record the run (replacing the previous one)."""
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"schedule#{schedule}#{region}"},
                "sk": {"S": "run"},
                "at": {"S": _iso(at)},
            },
        )

    def record(self, entry: Entry) -> None:
        """Append one entry."""
        document = asdict(entry)
        document["at"] = _iso(entry.at)
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": ENTRY_PK},
                "sk": {"S": f"{_iso(entry.at)}#{uuid.uuid4().hex}"},
                "doc": {"S": json.dumps(document, sort_keys=True)},
            },
        )

    def entries(self, since: datetime | None = None) -> list[Entry]:
        """Entries at or after ``since``, oldest first."""
        found = []
        for item in self._query(ENTRY_PK, _iso(since) if since else None):
            document = json.loads(item["doc"]["S"])
            document["at"] = datetime.fromisoformat(document["at"])
            found.append(Entry(**document))
        return found

    def claim(self, key: str, at: datetime) -> bool:
        """Take ``key`` once, by a conditional put."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={"pk": {"S": f"claim#{key}"}, "sk": {"S": "claim"}, "at": {"S": _iso(at)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def save_backup(self, backup: Backup) -> None:
        """Store a backup."""
        document = {
            "id": backup.id,
            "at": _iso(backup.at),
            "account": backup.account,
            "region": backup.region,
            "name": backup.name,
            "document": backup.document,
        }
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": BACKUP_PK},
                "sk": {"S": f"{_iso(backup.at)}#{backup.id}"},
                "doc": {"S": json.dumps(document, default=str, sort_keys=True)},
            },
        )

    def backups(self, name: str | None = None, region: str | None = None) -> list[Backup]:
        """Stored backups, newest first."""
        found = []
        for item in self._query(BACKUP_PK):
            d = json.loads(item["doc"]["S"])
            if (name is None or d["name"] == name) and (region is None or d["region"] == region):
                found.append(
                    Backup(
                        d["id"],
                        datetime.fromisoformat(d["at"]),
                        d["account"],
                        d["region"],
                        d["name"],
                        d["document"],
                    )
                )
        return sorted(found, key=lambda b: (b.at, b.id), reverse=True)
