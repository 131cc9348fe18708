"""The documents of one organisation run, in S3: JSON objects under the run's prefix.

The organisation stack's Lambda items pass each other plans and results through these
documents (a Step Functions state carries 256 KiB at most). Writes are plain PUTs: an item
retried writes the same key again. Errors AWS may clear on a retry (throttling, 5xx,
connection trouble) are raised as :class:`TransientStoreError`, the others as they come.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sagesaver.aws.session import Aws

# What a retry may cure (S3's throttling and server errors).
RETRYABLE_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500"}
)


class TransientStoreError(Exception):
    """An S3 call failed in a way a retry may cure."""


class RunStore:
    """JSON documents under ``s3://bucket/prefix``."""

    def __init__(self, aws: Aws, bucket: str, prefix: str, region: str) -> None:
        self.aws, self.bucket, self.prefix, self.region = aws, bucket, prefix, region

    def _client(self) -> Any:
        return self.aws.client("s3", self.region)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client(), operation)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in RETRYABLE_CODES:
                raise TransientStoreError(
                    f"S3 {operation} {kwargs.get('Key', '')}: {code}"
                ) from exc
            raise
        except BotoCoreError as exc:
            raise TransientStoreError(f"S3 {operation} {kwargs.get('Key', '')}: {exc}") from exc

    def put(self, name: str, document: Any) -> str:
        """Write ``document`` as ``prefix + name``; returns the key."""
        key = self.prefix + name
        body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        self._call(
            "put_object",
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
        return key

    def get(self, name: str) -> Any:
        """The document ``prefix + name``."""
        answer = self._call("get_object", Bucket=self.bucket, Key=self.prefix + name)
        return json.loads(answer["Body"].read())

    def exists(self, name: str) -> bool:
        """True when ``prefix + name`` was written."""
        return bool(self.names(name))

    def names(self, under: str) -> list[str]:
        """The names (after the prefix) of every document under ``prefix + under``, sorted."""
        found: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + under}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            found += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(found)

    def documents(self, under: str) -> list[Any]:
        """Every document under ``prefix + under``, in name order."""
        return [self.get(name) for name in self.names(under)]
