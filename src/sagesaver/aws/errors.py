"""Turn botocore exceptions into readable, secret-free error records."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from sagesaver.core.model import ScanError

AWS_ERRORS = (BotoCoreError, ClientError)


def scan_error(
    exc: Exception, region: str, operation: str, resource: str | None = None
) -> ScanError:
    """A :class:`ScanError` describing ``exc``: the AWS error code and message only."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code")
        message = error.get("Message") or str(exc)
    else:
        code = type(exc).__name__
        message = str(exc)
    return ScanError(
        region=region, operation=operation, message=message, resource=resource, code=code
    )
