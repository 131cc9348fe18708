"""The ledger in a DynamoDB table (``--ledger dynamodb://TABLE`` or ``dynamodb://REGION/TABLE``).

One table, string keys ``pk`` (partition) and ``sk`` (sort). A claim is a conditional put
(``attribute_not_exists(pk)``): DynamoDB lets exactly one of any number of concurrent runs
create the item, which is what guarantees that no resource is acted on twice. Entries and
backups are stored as JSON documents in a ``doc`` attribute.

A backup's environment values and its digest are sealed under the table's own key (its SSE
key, read from the ``DescribeTable`` answer the ledger is opened with) when that is a customer
managed key: KMS ``Encrypt`` directly, decrypted only by ``restore --apply``. A table under
DynamoDB's own or the AWS managed key keeps them in clear, as a file does. A backup whose
deletion is recorded carries ``expires_at`` (epoch seconds) for the table's TTL.
"""

from __future__ import annotations

import json
import uuid
import zlib
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from sagesaver.aws import kms
from sagesaver.aws.session import Aws
from sagesaver.core.errors import InputError
from sagesaver.core.formats import stamp, utc_iso
from sagesaver.core.records import EXPIRES_ATTRIBUTE, TABLE_KEYS, Announced
from sagesaver.core.sealing import (
    BackupRefused,
    Kept,
    Opened,
    open_envelope,
    open_plain,
    seal_envelope,
    seal_plain,
    sealed_unopened,
)
from sagesaver.ledger import CLAIMED, DONE, OPEN_STATES, RELEASED, Backup, Entry, Lease
from sagesaver.ledger.base import RUN_SUMMARIES, RunSummary

ENTRY_PK = "entry"
BACKUP_PK = "backup"
LEASE_PK = "lease"
SUMMARY_PK = "run-summary"


def create_table(aws: Aws, region: str, table: str) -> None:
    """Create the ledger table (on-demand capacity) and wait until it exists."""
    client = aws.client("dynamodb", region)
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", **TABLE_KEYS)
    client.get_waiter("table_exists").wait(TableName=table)


class DynamoLedger:
    """A :class:`~sagesaver.ledger.Ledger` in a DynamoDB table."""

    def __init__(self, aws: Aws, region: str, table: str, setting: str = "--ledger") -> None:
        self.aws = aws
        self.client = aws.client("dynamodb", region)
        self.table = table
        self.region = region
        try:
            described = self.client.describe_table(TableName=table)["Table"]
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", str(exc))
            raise InputError(f"{setting} dynamodb://{region}/{table}: {message}") from exc
        sse = described.get("SSEDescription") or {}
        # The table's KMS key (None: DynamoDB's own key); whether it can seal is asked once.
        self.table_key: str | None = (
            sse.get("KMSMasterKeyArn") if sse.get("Status") in ("ENABLED", "UPDATING") else None
        )
        self._sealing_key: tuple[str | None] | None = None

    def sealing_key(self) -> str | None:
        """The ARN of the key backups are sealed under: the table's own, when it is a
        customer managed key (``DescribeKey``, once); None otherwise."""
        if self._sealing_key is None:
            key = self.table_key
            self._sealing_key = (kms.sealing_key(self.aws, self.region, key) if key else None,)
        return self._sealing_key[0]

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
                "at": {"S": utc_iso(at)},
            },
        )

    def mark_seen(self, kind: str, at: datetime) -> None:
        """Record a complete scan of ``kind`` (a conditional put: never moving back)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={"pk": {"S": "seen"}, "sk": {"S": kind}, "at": {"S": utc_iso(at)}},
                ConditionExpression="attribute_not_exists(pk) OR #at < :at",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":at": {"S": utc_iso(at)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise  # a later moment is kept already otherwise

    def seen(self) -> dict[str, datetime]:
        """When each kind was last seen whole."""
        return {
            item["sk"]["S"]: datetime.fromisoformat(item["at"]["S"]) for item in self._query("seen")
        }

    def record(self, entry: Entry) -> None:
        """Append one entry."""
        document = asdict(entry)
        document["at"] = utc_iso(entry.at)
        document["off_until"] = utc_iso(entry.off_until) if entry.off_until else None
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": ENTRY_PK},
                "sk": {"S": f"{utc_iso(entry.at)}#{uuid.uuid4().hex}"},
                "doc": {"S": json.dumps(document, sort_keys=True)},
            },
        )

    def entries(self, since: datetime | None = None) -> list[Entry]:
        """Entries at or after ``since``, oldest first."""
        found = []
        for item in self._query(ENTRY_PK, utc_iso(since) if since else None):
            document = json.loads(item["doc"]["S"])
            document["at"] = datetime.fromisoformat(document["at"])
            until = document.get("off_until")
            document["off_until"] = datetime.fromisoformat(until) if until else None
            if "hourly_cost_usd" in document:  # written before prices had a currency
                document["hourly_cost"] = document.pop("hourly_cost_usd")
            found.append(Entry(**document))
        return found

    def claim(self, key: str, at: datetime) -> bool:
        """Take ``key`` once, by a conditional put."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={"pk": {"S": f"claim#{key}"}, "sk": {"S": "claim"}, "at": {"S": utc_iso(at)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @property
    def location(self) -> str:
        """``dynamodb://REGION/TABLE``."""
        return f"dynamodb://{self.region}/{self.table}"

    def is_claimed(self, key: str) -> bool:
        """True when ``key`` was claimed."""
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"claim#{key}"}, "sk": {"S": "claim"}},
            ConsistentRead=True,
        ).get("Item")
        return item is not None

    def take_lease(
        self, key: str, holder: str, at: datetime, expires: datetime, subject: dict[str, str]
    ) -> bool:
        """Take the lease by a conditional put: DynamoDB lets exactly one run win."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": LEASE_PK},
                    "sk": {"S": key},
                    "holder": {"S": holder},
                    "at": {"S": stamp(at)},
                    "expires": {"S": stamp(expires)},
                    "state": {"S": CLAIMED},
                    "subject": {"S": json.dumps(subject, sort_keys=True)},
                },
                ConditionExpression="attribute_not_exists(sk) OR #state = :released"
                " OR (#state <> :done AND expires < :at)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":released": {"S": RELEASED},
                    ":done": {"S": DONE},
                    ":at": {"S": stamp(at)},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def advance_lease(
        self, key: str, holder: str, state: str, backup_id: str | None = None
    ) -> bool:
        """Move the lease on, if ``holder`` still holds it (a conditional update)."""
        update = "SET #state = :state"
        values: dict[str, Any] = {
            ":state": {"S": state},
            ":holder": {"S": holder},
            ":done": {"S": DONE},
            ":released": {"S": RELEASED},
        }
        if backup_id is not None:
            update += ", backup_id = :backup"
            values[":backup"] = {"S": backup_id}
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": LEASE_PK}, "sk": {"S": key}},
                UpdateExpression=update,
                ConditionExpression="holder = :holder AND #state <> :done AND #state <> :released",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def open_leases(self) -> list[Lease]:
        """Leases not done nor released, oldest first."""
        found = [
            Lease(
                key=item["sk"]["S"],
                holder=item["holder"]["S"],
                at=datetime.fromisoformat(item["at"]["S"]),
                expires=datetime.fromisoformat(item["expires"]["S"]),
                state=item["state"]["S"],
                backup_id=item.get("backup_id", {}).get("S"),
                subject=json.loads(item["subject"]["S"]),
            )
            for item in self._query(LEASE_PK)
            if item["state"]["S"] in OPEN_STATES
        ]
        return sorted(found, key=lambda lease: (lease.at, lease.key))

    def record_announcement(
        self, key: str, deadline: datetime, at: datetime, message_ids: list[str]
    ) -> None:
        """Record an announcement that reached people."""
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"announce#{key}"},
                "sk": {"S": f"{stamp(at)}#{stamp(deadline)}"},
                "deadline": {"S": stamp(deadline)},
                "message_ids": {"S": json.dumps(message_ids)},
            },
        )

    def announcements(self, keys: list[str]) -> dict[str, Announced]:
        """The latest announcement of each key (one query per key)."""
        found: dict[str, Announced] = {}
        for key in dict.fromkeys(keys):
            items = self._query(f"announce#{key}")
            if items:
                latest = max(items, key=lambda item: item["sk"]["S"])
                at = latest["sk"]["S"].split("#", 1)[0]
                found[key] = Announced(
                    datetime.fromisoformat(latest["deadline"]["S"]),
                    datetime.fromisoformat(at),
                    tuple(json.loads(latest["message_ids"]["S"])),
                )
        return found

    def last_digest(self, scope: str) -> tuple[datetime, list[str]] | None:
        """The last digest of ``scope``."""
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"digest#{scope}"}, "sk": {"S": "last"}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        return datetime.fromisoformat(item["at"]["S"]), json.loads(item["keys"]["S"])

    def record_digest(self, scope: str, at: datetime, keys: list[str]) -> None:
        """Record a digest (replacing the previous one of the scope)."""
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"digest#{scope}"},
                "sk": {"S": "last"},
                "at": {"S": utc_iso(at)},
                "keys": {"S": json.dumps(keys)},
            },
        )

    def save_backup(self, backup: Backup, environment: bool = True) -> Kept:
        """Store a backup: its environment values and digest sealed under the table's key
        when it is a customer managed key (one KMS ``Encrypt`` per 4 KB), else in clear."""
        key = self.sealing_key()
        if key is None:
            stored, seal, kept = seal_plain(backup, environment)
        else:
            stored, seal, envelope, kept = seal_envelope(backup, environment)
            seal["kms"] = {
                "key": key,
                "parts": kms.encrypt(self.aws, self.region, key, backup, envelope),
            }
        document = {
            "id": backup.id,
            "at": utc_iso(backup.at),
            "account": backup.account,
            "region": backup.region,
            "name": backup.name,
            "document": stored,
            "seal": seal,
        }
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": BACKUP_PK},
                "sk": {"S": f"{utc_iso(backup.at)}#{backup.id}"},
                "doc": {"S": json.dumps(document, sort_keys=True)},
            },
        )
        return kept

    def open_backup(self, backup: Backup, decrypt: bool, accept_unsealed: bool = False) -> Opened:
        """The backup, checked: under a table that seals, its envelope (decrypted under the
        table's key only, with ``decrypt``; a dry run decrypts nothing) and the digest in it;
        a digest only, or no seal, is refused unless ``accept_unsealed`` (anyone who can
        write the table could have written it). Under a table that cannot seal, its digest."""
        seal = backup.seal or {}
        if "kms" not in seal:
            key = self.sealing_key()
            why = f"is not sealed under the ledger's key {key}" if key and seal else ""
            return open_plain(backup, accept_unsealed, why)
        if not decrypt:
            return sealed_unopened(backup)
        key = self.sealing_key()
        if key is None or seal["kms"].get("key") != key:
            raise BackupRefused(
                f"backup {backup.id} of {backup.name} ({backup.region}) is sealed under KMS key "
                f"{seal['kms'].get('key')}, not under the ledger table's key "
                f"({key or 'none that SageSaver can use'}): it was not written here; nothing "
                "was created"
            )
        parts = seal["kms"].get("parts")
        if not isinstance(parts, list) or not parts:
            raise BackupRefused(f"backup {backup.id}: its seal holds no envelope")
        return open_envelope(backup, kms.decrypt(self.aws, self.region, key, backup, parts))

    def keep_backup_until(self, backup_id: str, until: datetime) -> None:
        """Set the backup's ``expires_at`` (the table's TTL deletes it after then)."""
        for item in self._backup_keys():
            if item["sk"]["S"].endswith(f"#{backup_id}"):
                try:
                    self.client.update_item(
                        TableName=self.table,
                        Key={"pk": item["pk"], "sk": item["sk"]},
                        UpdateExpression="SET #expires = :until",
                        ExpressionAttributeNames={"#expires": EXPIRES_ATTRIBUTE},
                        ConditionExpression="attribute_exists(pk)",
                        ExpressionAttributeValues={":until": {"N": str(int(until.timestamp()))}},
                    )
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if code != "ConditionalCheckFailedException":
                        raise  # dropped meanwhile: nothing to keep

    def _backup_keys(self) -> list[dict[str, Any]]:
        """The keys of every backup item (not their documents)."""
        items: list[dict[str, Any]] = []
        for page in self.client.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": BACKUP_PK}},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        ):
            items.extend(page["Items"])
        return items

    def backups(self, name: str | None = None, region: str | None = None) -> list[Backup]:
        """Stored backups, newest first."""
        found = []
        for item in self._query(BACKUP_PK):
            d = json.loads(item["doc"]["S"])
            if (name is None or d["name"] == name) and (region is None or d["region"] == region):
                expires = item.get(EXPIRES_ATTRIBUTE, {}).get("N")
                found.append(
                    Backup(
                        d["id"],
                        datetime.fromisoformat(d["at"]),
                        d["account"],
                        d["region"],
                        d["name"],
                        d["document"],
                        d.get("seal"),
                        datetime.fromtimestamp(int(expires), timezone.utc) if expires else None,
                    )
                )
        return sorted(found, key=lambda b: (b.at, b.id), reverse=True)

    def drop_backup(self, backup_id: str) -> None:
        """Forget a backup taken for a deletion that did not happen."""
        for item in self._query(BACKUP_PK):
            if item["sk"]["S"].endswith(f"#{backup_id}"):
                self.client.delete_item(
                    TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]}
                )

    def record_run_summary(self, run_id: str, at: datetime, document: dict[str, Any]) -> None:
        """Keep a run's summary: its JSON compressed (zlib), in parts of at most
        :data:`CACHE_PART_BYTES` (a DynamoDB item is at most 400 KB, counting a binary value's
        raw bytes: docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html
        and CapacityUnitCalculations.html). The head (``run-summary``, sorted by time) holds
        the first part and is written last, so no reader meets a head without its parts; the
        other parts sit under ``run-summary#RUN``, each marked with the write it belongs to."""
        data = zlib.compress(json.dumps(document, sort_keys=True).encode("utf-8"), 9)
        size = CACHE_PART_BYTES
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        write = uuid.uuid4().hex
        for i in range(1, len(chunks)):
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"{SUMMARY_PK}#{run_id}"},
                    "sk": {"S": f"part#{i:04d}"},
                    "write": {"S": write},
                    "data": {"B": chunks[i]},
                },
            )
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": SUMMARY_PK},
                "sk": {"S": f"{stamp(at)}#{run_id}"},
                "run_id": {"S": run_id},
                "at": {"S": stamp(at)},
                "write": {"S": write},
                "parts": {"N": str(len(chunks))},
                "data": {"B": chunks[0]},
            },
        )

    def run_summaries(
        self, since: datetime | None = None, limit: int = RUN_SUMMARIES
    ) -> list[RunSummary]:
        """The newest run summaries, newest first (a query backwards in time). One whose
        parts were being rewritten while it was read is left out."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": SUMMARY_PK}}
        if since is not None:
            condition += " AND sk >= :since"
            values[":since"] = {"S": stamp(since)}
        found: list[RunSummary] = []
        start: dict[str, Any] | None = None
        while len(found) < limit:
            page = self.client.query(
                TableName=self.table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                ConsistentRead=True,
                Limit=limit - len(found),
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for head in page["Items"]:
                summary = self._run_summary(head)
                if summary is not None:
                    found.append(summary)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return found[: max(0, limit)]

    def _run_summary(self, head: dict[str, Any]) -> RunSummary | None:
        """The summary a head item starts (None: its parts belong to another write)."""
        run_id, write = head["run_id"]["S"], head["write"]["S"]
        chunks = [head["data"]["B"]]
        if int(head["parts"]["N"]) > 1:
            parts = {item["sk"]["S"]: item for item in self._query(f"{SUMMARY_PK}#{run_id}")}
            for i in range(1, int(head["parts"]["N"])):
                part = parts.get(f"part#{i:04d}")
                if part is None or part["write"]["S"] != write:
                    return None
                chunks.append(part["data"]["B"])
        document = json.loads(zlib.decompress(b"".join(chunks)).decode("utf-8"))
        return RunSummary(run_id, datetime.fromisoformat(head["at"]["S"]), document)


CACHE_PART_BYTES = 350_000  # under DynamoDB's 400 KB item limit, with room for the keys


class DynamoConfigStore:
    """A :class:`~sagesaver.aws.endpoint_configs.ConfigStore` in the ledger's table (for
    Lambda): the document in parts of at most 350 KB under one partition key; part 0, written
    last, says how many parts and which write they belong to."""

    def __init__(self, ledger: DynamoLedger, name: str = "endpoint-configs") -> None:
        self.ledger = ledger
        self.client = ledger.client
        self.table = ledger.table
        self.pk = f"cache#{name}"

    def load(self) -> bytes | None:
        """The saved document, or None when absent or torn by a concurrent write."""
        try:
            items = self.ledger._query(self.pk)
        except ClientError:
            return None
        parts = {item["sk"]["S"]: item for item in items}
        head = parts.get("part#0000")
        if head is None:
            return None
        write, count = head["write"]["S"], int(head["parts"]["N"])
        chunks = []
        for i in range(count):
            part = parts.get(f"part#{i:04d}")
            if part is None or part["write"]["S"] != write:
                return None
            chunks.append(part["data"]["B"])
        return b"".join(chunks)

    def save(self, data: bytes) -> None:
        """Write the parts, the first one last; a failure leaves the cache to be rebuilt."""
        write = uuid.uuid4().hex
        chunks = [data[i : i + CACHE_PART_BYTES] for i in range(0, len(data), CACHE_PART_BYTES)]
        chunks = chunks or [b""]
        try:
            for i in reversed(range(len(chunks))):
                item: dict[str, Any] = {
                    "pk": {"S": self.pk},
                    "sk": {"S": f"part#{i:04d}"},
                    "write": {"S": write},
                    "data": {"B": chunks[i]},
                }
                if i == 0:
                    item["parts"] = {"N": str(len(chunks))}
                self.client.put_item(TableName=self.table, Item=item)
        except ClientError:
            pass  # a cache that cannot be written only costs calls next time
