"""The CloudFormation template that runs SageSaver serverless in one account and region.

:func:`render_template` turns a policy into a template (a plain ``dict``; the caller writes it
as JSON or YAML). The stack holds:

* ``IdleScanFunction`` (``sagesaver.lambda_handlers.idle_endpoints``), run by an EventBridge
  Scheduler schedule (``scan_schedule``, hourly by default);
* ``ScheduleTickFunction`` (``sagesaver.lambda_handlers.schedule_tick``), only when the policy has
  ``schedules``, run by the schedules described below;
* an SNS topic encrypted with the AWS managed key ``alias/aws/sns``, one e-mail subscription
  per address, and the functions' policy text pointing ``notify.sns_topic_arn`` at it;
* the DynamoDB ledger (keys ``pk``/``sk``, on-demand, encrypted, point-in-time recovery;
  kept when the stack is deleted, because it holds the backups of deleted endpoints);
* the ``sagesaver-autostop`` notebook lifecycle configuration (the on-instance agent);
* one log group per function (30 days) and one IAM role per function whose inline policy
  grants exactly the actions of the capabilities :data:`FUNCTIONS` declares, on the narrowest
  resources the services allow; a role that lets EventBridge Scheduler invoke the functions.

**How the schedule tick is triggered** (``tick``):

``"boundaries"`` (the default)
    One EventBridge Scheduler schedule per start or stop expression of each policy schedule
    (:func:`sagesaver.core.cron.to_eventbridge_expressions`), evaluated in the schedule's own
    IANA time zone (``ScheduleExpressionTimezone``), with the input
    ``{"schedule": NAME, "transition": "start"|"stop"}``. The function runs within a minute
    of each start and stop moment and only then; the ledger's record of the previous run makes
    each run act on the moments since then. A schedule with ``enforced: true`` also gets a
    ``rate(<interval_minutes> minutes)`` schedule (its ``interval_minutes``), since it must
    drive instances to the wanted state between boundaries too. A schedule with a
    ``calendar`` or ``work_dates`` has its expressions at the same times on every day of the
    week (Scheduler cannot tell holidays): a make-up Saturday gets its run, and the tick's
    own planning starts nothing on a day off.
    Caveat: EventBridge Scheduler skips a cron time that does not exist on a spring-forward
    day (SageSaver's own rule is "take effect just after the gap"), so a start or stop set
    inside a DST gap (usually 02:00-03:00 local) is missed on that one day; choose
    ``"rate"`` or ``enforced: true`` for such times.
``"rate"``
    One schedule, ``rate(<tick_minutes> minutes)``, with the input ``{}``: every run handles
    every schedule, acting on the boundaries since its previous run. Up to ``tick_minutes``
    late, but it follows SageSaver's daylight-saving rules exactly.

**How the topic ARN reaches the policy**: the functions read the topic only from the policy
text (``SAGESAVER_POLICY``). The policy is dumped with ``notify.sns_topic_arn`` set to the
variable ``${NotificationTopic}`` and the whole text is passed through ``Fn::Sub`` (any
literal ``${`` of the policy is escaped as ``${!``), so CloudFormation writes the topic's ARN
into it. A topic ARN already in the policy is replaced by the stack's topic.

Function names are ``<stack name>-idle-scan`` and ``<stack name>-schedule-tick`` (so the log
group names are known in advance): keep stack names to 50 characters (Lambda's limit is 64).

The pieces: the functions, their roles and grants in :mod:`sagesaver.deploy.iam`; the other
resources in :mod:`sagesaver.deploy.resources`; the logical ids in :mod:`sagesaver.deploy.names`.

Pure: no AWS calls, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from sagesaver.core.errors import InputError
from sagesaver.core.lifecycle import AgentOptions, encoded_content, render_on_start
from sagesaver.core.partitions import one_partition, partition_of, service_principal
from sagesaver.core.permissions import UNSCOPED_ACTIONS
from sagesaver.core.policy import LEDGER_TABLE_RE, Policy
from sagesaver.deploy.availability import LIFECYCLE_TYPE, SCHEDULE_TYPE, Gap, gaps
from sagesaver.deploy.iam import (
    DEAD_LETTER_ACTIONS,
    EXTRA_ACTIONS,
    FUNCTIONS,
    INVOKE_ACTIONS,
    LEDGER_ACTIONS,
    LOG_ACTIONS,
    TOPIC_KEY_ACTIONS,
    _role,
    declared_actions,
    template_actions,
)
from sagesaver.deploy.names import (
    DEAD_LETTERS,
    IDLE_SCAN,
    LIFECYCLE,
    SCAN_SCHEDULE,
    SCHEDULE_TICK,
    SCHEDULER_ROLE,
    TABLE,
    TOPIC,
    Json,
    _arn_of,
    _ref,
)
from sagesaver.deploy.package import RUNTIME as PACKAGE_RUNTIME
from sagesaver.deploy.resources import (
    StackOptions,
    Tick,
    _dead_letters_alarm,
    _environment,
    _errors_alarm,
    _function_resources,
    _rules_instead_of_scheduler,
    _schedule,
    _throttles_alarm,
    _tick_schedules,
    check_options,
    messaging_and_ledger,
)

# The IAM names and logical ids live in iam.py and names.py: re-exported for the tests that
# import them from here.
__all__ = [
    "DEAD_LETTER_ACTIONS",
    "EXTRA_ACTIONS",
    "FUNCTIONS",
    "IDLE_SCAN",
    "LEDGER_ACTIONS",
    "LIFECYCLE",
    "LOG_ACTIONS",
    "SCHEDULER_ROLE",
    "SCHEDULE_TICK",
    "TABLE",
    "TOPIC",
    "TOPIC_KEY_ACTIONS",
    "UNSCOPED_ACTIONS",
    "StackOptions",
    "declared_actions",
    "deployment_gaps",
    "policy_text",
    "render_template",
    "template_actions",
]

RUNTIME = PACKAGE_RUNTIME  # one runtime for the package and the template
ARCHITECTURES = ("x86_64", "arm64")
LIFECYCLE_CONFIG_NAME = "sagesaver-autostop"


# --- the policy text ------------------------------------------------------------------------

_TOPIC_PLACEHOLDER = "SAGESAVER-DEPLOY-TOPIC-ARN-PLACEHOLDER"


def policy_text(policy: Policy) -> str:
    """The policy as ``Fn::Sub`` text whose ``notify.sns_topic_arn`` is the stack's topic.

    Substituting ``${NotificationTopic}`` with the topic ARN and ``${!`` with ``${`` (what
    ``Fn::Sub`` does) gives YAML that :func:`sagesaver.core.policy.parse_policy` reads back as
    ``policy`` with that topic.
    """
    data: dict[str, Any] = policy.model_dump(mode="json", exclude_defaults=True)
    notify = dict(data.get("notify") or {})
    notify["sns_topic_arn"] = _TOPIC_PLACEHOLDER
    data["notify"] = notify
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if text.count(_TOPIC_PLACEHOLDER) != 1:
        raise InputError(f"the policy must not contain the text {_TOPIC_PLACEHOLDER!r}")
    return text.replace("${", "${!").replace(_TOPIC_PLACEHOLDER, f"${{{TOPIC}}}")


# --- the template ---------------------------------------------------------------------------


def _check_inputs(
    code_bucket: str,
    code_key: str,
    emails: Sequence[str],
    architecture: str,
    tick_minutes: int,
    scan_schedule: str,
    tick: str,
) -> list[str]:
    """Validate the arguments; return the e-mail addresses, de-duplicated, in order."""
    if not code_bucket.strip() or not code_key.strip():
        raise InputError("the code bucket and key must not be empty")
    if architecture not in ARCHITECTURES:
        raise InputError(f"architecture {architecture!r}: use one of {', '.join(ARCHITECTURES)}")
    if not 1 <= tick_minutes <= 1440:
        raise InputError(f"tick minutes {tick_minutes}: must be from 1 to 1440")
    if not re.fullmatch(r"(rate|cron)\(.+\)", scan_schedule.strip()):
        raise InputError(f"scan schedule {scan_schedule!r}: use rate(...) or cron(...)")
    if tick not in ("boundaries", "rate"):
        raise InputError(f"tick {tick!r}: use 'boundaries' or 'rate'")
    addresses: list[str] = []
    for email in emails:
        address = email.strip()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
            raise InputError(f"{email!r} is not an e-mail address")
        if address.lower() not in {a.lower() for a in addresses}:
            addresses.append(address)
    return addresses


def deployment_gaps(policy: Policy, region: str | None) -> list[Gap]:
    """What the stack cannot have in ``region``; raises :class:`InputError` when ``region``
    is of another partition than the policy's regions, topic or ledger (a stack reaches only
    its own partition), or when EventBridge Scheduler, which runs every function, is missing.
    """
    if region is None:
        return []
    named: dict[str, list[str]] = {"the stack's region": [region], "regions": policy.regions}
    if policy.notify.topic_region is not None:
        named["notify.sns_topic_arn"] = [policy.notify.topic_region]
    match = LEDGER_TABLE_RE.match(policy.ledger or "")
    if match and match.group("region"):
        named["ledger"] = [match.group("region")]
    one_partition(named)
    return gaps(region, {LIFECYCLE_TYPE, SCHEDULE_TYPE})


def render_template(
    policy: Policy,
    code_bucket: str,
    code_key: str,
    emails: list[str],
    architecture: str = "x86_64",
    tick_minutes: int = 10,
    scan_schedule: str = "rate(1 hour)",
    *,
    tick: Tick = "boundaries",
    runtime: str = RUNTIME,
    region: str | None = None,
    options: StackOptions | None = None,
) -> dict[str, Any]:
    """The CloudFormation template deploying SageSaver for ``policy`` (see the module doc).

    ``code_bucket``/``code_key`` name the zip of the package and its dependencies; ``emails``
    are subscribed to the notification topic; ``architecture`` is ``x86_64`` or ``arm64``;
    ``scan_schedule`` is the idle scan's EventBridge Scheduler expression; ``tick`` chooses
    how the schedule tick is triggered (``tick_minutes`` is its period with ``"rate"``);
    ``runtime`` is the package's (``sagesaver.deploy.package.read_manifest``); ``region``,
    when known, is the stack's: it must be of the policy's partition, and a resource type
    CloudFormation does not offer there is left out or refused (:func:`deployment_gaps`);
    ``options`` pins and signs the code, reserves concurrency, names the ledger's operators.
    Raises :class:`~sagesaver.core.errors.InputError` for invalid arguments.
    """
    addresses = _check_inputs(
        code_bucket, code_key, emails, architecture, tick_minutes, scan_schedule, tick
    )
    missing = {g.resource_type for g in deployment_gaps(policy, region)}
    partition = one_partition({"regions": policy.regions}) or (
        partition_of(region) if region else None
    )
    options = options or StackOptions()
    check_options(options, partition, region)
    text = policy_text(policy)
    environment = _environment(policy, text)
    functions = [IDLE_SCAN] + ([SCHEDULE_TICK] if policy.schedules else [])

    parks = any(spec.targets("endpoints") for spec in policy.schedules.values())
    resources = messaging_and_ledger(addresses, policy, options.operators, parks)
    if LIFECYCLE_TYPE not in missing:
        resources[LIFECYCLE] = {
            "Type": LIFECYCLE_TYPE,
            "Properties": {
                "NotebookInstanceLifecycleConfigName": LIFECYCLE_CONFIG_NAME,
                "OnStart": [{"Content": encoded_content(render_on_start(AgentOptions()))}],
            },
        }
    for function in functions:
        resources.update(
            _function_resources(
                function,
                FUNCTIONS[function],
                policy,
                environment,
                code_bucket,
                code_key,
                architecture,
                runtime,
                options,
            )
        )
    for function in functions:
        resources[f"{function}ErrorsAlarm"] = _errors_alarm(function)
        resources[f"{function}ThrottlesAlarm"] = _throttles_alarm(function)
    resources["DeadLetterQueueDepthAlarm"] = _dead_letters_alarm()
    if SCHEDULE_TYPE in missing:
        resources.update(_rules_instead_of_scheduler(policy, scan_schedule.strip(), tick_minutes))
        return _template(policy, resources, functions, scheduler=False)
    resources[SCHEDULER_ROLE] = _role(
        service_principal("scheduler"),
        "sagesaver-invoke",
        [
            {
                "Sid": "InvokeSageSaver",
                "Effect": "Allow",
                "Action": list(INVOKE_ACTIONS),
                "Resource": [_arn_of(f) for f in functions],
            },
            {  # an invocation it could not deliver, after its retries
                "Sid": "DeadLetters",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": _arn_of(DEAD_LETTERS),
            },
        ],
    )
    resources[SCAN_SCHEDULE] = _schedule(
        "SageSaver: idle endpoint scan", scan_schedule.strip(), IDLE_SCAN, {}
    )
    if policy.schedules:
        resources.update(_tick_schedules(policy, tick, tick_minutes))
    return _template(policy, resources, functions, scheduler=True)


def _template(
    policy: Policy, resources: dict[str, Json], functions: list[str], scheduler: bool
) -> dict[str, Any]:
    """The template document: ``resources`` and the outputs the commands read back."""
    outputs: dict[str, Json] = {
        "TopicArn": {"Description": "The notification topic", "Value": _ref(TOPIC)},
        "LedgerTableName": {
            "Description": "The ledger table",
            "Value": policy.ledger_table or _ref(TABLE),
        },
    }
    if policy.schedules and scheduler:  # what `sagesaver schedule rules --stack-name` needs
        outputs["SchedulerRoleArn"] = {
            "Description": "The role EventBridge Scheduler assumes to invoke the functions",
            "Value": _arn_of(SCHEDULER_ROLE),
        }
    for function in functions:
        outputs[f"{function}Arn"] = {
            "Description": FUNCTIONS[function].description,
            "Value": _arn_of(function),
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "SageSaver: stops and deletes idle Amazon SageMaker resources",
        "Resources": resources,
        "Outputs": outputs,
    }
