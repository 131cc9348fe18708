"""The stack's logical ids and the CloudFormation intrinsic functions that refer to them
(``Ref``, ``Fn::GetAtt``, ``Fn::Sub``): what the IAM statements, the resources and the
template share.

Pure: no AWS calls, no clock.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

# The topic's key: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# key for SNS, so the stack makes its own, which lets CloudWatch (and the functions) use it.
TOPIC_KEY = "TopicKey"
DEAD_LETTERS = "DeadLetterQueue"

TOPIC = "NotificationTopic"
TABLE = "LedgerTable"
LEDGER_KEY = "LedgerKey"
LIFECYCLE = "AutoStopLifecycleConfig"
SCHEDULER_ROLE = "SchedulerRole"
SCAN_SCHEDULE = "IdleScanSchedule"
IDLE_SCAN = "IdleScanFunction"
SCHEDULE_TICK = "ScheduleTickFunction"

# The organisation stack (deploy/organisation.py): its state machine, the role that runs it,
# its log group, the bucket of each run's documents, the schedule that starts it.
STATE_MACHINE = "OrganisationStateMachine"
STATE_MACHINE_ROLE = "OrganisationStateMachineRole"
STATE_MACHINE_LOGS = "OrganisationStateMachineLogGroup"
RUN_BUCKET = "RunBucket"
RUN_SCHEDULE = "OrganisationRunSchedule"

Json = dict[str, Any]


def _sub(text: str) -> Json:
    return {"Fn::Sub": text}


def _ref(name: str) -> Json:
    return {"Ref": name}


def _arn_of(name: str) -> Json:
    return {"Fn::GetAtt": [name, "Arn"]}


def _log_group_id(function: str) -> str:
    return f"{function}LogGroup"


def _role_id(function: str) -> str:
    return f"{function}Role"


def _logical(prefix: str, name: str) -> str:
    """A stable CloudFormation logical id for a user-chosen name."""
    camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    return f"{prefix}{camel}{digest}"
