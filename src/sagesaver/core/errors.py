"""The exceptions SageSaver raises on purpose.

::

    SageSaverError                 base of everything below
    ├── InputError                 bad input from the user: exit code 2, nothing changed in AWS
    │   └── PolicyError            the policy file cannot be read or is invalid
    └── AwsCallError               one AWS call failed; carries region, operation and resource

AWS failures are normally *collected* (see ``model.ScanError``) rather than raised, so that
one failing region or resource never stops the rest of a run.
"""

from __future__ import annotations


class SageSaverError(Exception):
    """Base class of SageSaver's own exceptions."""


class InputError(SageSaverError):
    """The user's input is invalid. The command exits with code 2 and changes nothing."""


class PolicyError(InputError):
    """The policy file is missing, unreadable, not YAML, or does not validate."""


class AwsCallError(SageSaverError):
    """An AWS call failed for one region or one resource."""

    def __init__(
        self, region: str, operation: str, message: str, resource: str | None = None
    ) -> None:
        super().__init__(f"{region}: {operation} failed: {message}")
        self.region = region
        self.operation = operation
        self.message = message
        self.resource = resource
