"""A backup's envelope under the ledger table's own KMS key: which key can seal, and KMS
``Encrypt``/``Decrypt`` of the envelope's parts (at most 4 KB each), each under its encryption
context (:func:`sagesaver.core.sealing.encryption_context`). No data key and no local cipher:
the Lambda runtime has no AES library, and an envelope is a few KB.
"""

from __future__ import annotations

import base64

from botocore.exceptions import ClientError

from sagesaver.aws.session import Aws
from sagesaver.core.records import Backup
from sagesaver.core.sealing import BackupRefused, encryption_context, split


def sealing_key(aws: Aws, region: str, key: str) -> str | None:
    """The ARN of ``key`` (a table's SSE key) when SageSaver can seal with it: a customer
    managed key (``DescribeKey``). None for an AWS managed key (``alias/aws/dynamodb``), whose
    policy lets only DynamoDB use it."""
    metadata = aws.client("kms", region).describe_key(KeyId=key)["KeyMetadata"]
    if metadata.get("KeyManager") != "CUSTOMER":
        return None
    return str(metadata["Arn"])


def encrypt(aws: Aws, region: str, key: str, backup: Backup, envelope: bytes) -> list[str]:
    """The envelope encrypted under ``key``, part by part (base64)."""
    client = aws.client("kms", region)
    parts = split(envelope)
    return [
        base64.b64encode(
            client.encrypt(
                KeyId=key,
                Plaintext=part,
                EncryptionContext=encryption_context(backup, index, len(parts)),
            )["CiphertextBlob"]
        ).decode("ascii")
        for index, part in enumerate(parts)
    ]


def decrypt(aws: Aws, region: str, key: str, backup: Backup, parts: list[str]) -> bytes:
    """The envelope of ``backup``, decrypted under ``key`` only (never under the key a
    ciphertext names: a forger's own key would open a forger's envelope). Raises
    :class:`BackupRefused` when a part does not open as that part of that backup."""
    client = aws.client("kms", region)
    plain = []
    for index, part in enumerate(parts):
        context = encryption_context(backup, index, len(parts))
        try:
            answer = client.decrypt(
                CiphertextBlob=base64.b64decode(part, validate=True),
                KeyId=key,
                EncryptionContext=context,
            )
        except (ValueError, ClientError) as exc:
            code = (
                exc.response.get("Error", {}).get("Code", "")
                if isinstance(exc, ClientError)
                else "not base64"
            )
            raise BackupRefused(
                f"backup {backup.id} of {backup.name} ({backup.region}): its sealed envelope "
                f"does not open under the ledger's key {key} as this backup's "
                f"({code or exc}): it was not written by SageSaver for this backup, or you may "
                "not use the key (kms:Decrypt); nothing was created"
            ) from exc
        if answer.get("KeyId") != key:
            raise BackupRefused(
                f"backup {backup.id}: its envelope opened under {answer.get('KeyId')}, not the "
                f"ledger's key {key}; nothing was created"
            )
        plain.append(bytes(answer["Plaintext"]))
    return b"".join(plain)
