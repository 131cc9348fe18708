"""Test-only extension of moto's CloudFormation: the three resource types of SageSaver's stack
that moto 5.2 skips with a warning (``AWS::Scheduler::Schedule``, ``AWS::SNS::Subscription``,
``AWS::CloudWatch::Alarm``), and the outputs of a stack made through a change set (moto keeps
those of the empty template the change set started from, so ``DescribeStacks`` shows none).

Each is created in moto's own backend of that service, from the properties the template gives,
so a test can read them back with the service's API (``scheduler:GetSchedule``,
``sns:ListSubscriptionsByTopic``, ``cloudwatch:DescribeAlarms``) and see what the stack made.
Importing the module registers them; moto finds CloudFormation models as subclasses of
``CloudFormationModel``.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.scheduler.models import scheduler_backends
from moto.sns.models import sns_backends


class _Made:
    """A resource made by the stack, known by its physical id. (moto finds models among the
    *direct* subclasses of ``CloudFormationModel``: each class below names it as a base.)"""

    def __init__(self, physical_id: str) -> None:
        self.physical_id = physical_id

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> _Made:
        """moto's hook: make the resource in its service's backend, keep its physical id."""
        properties = cloudformation_json["Properties"]
        return cls(cls.make(resource_name, properties, account_id, region_name))

    @staticmethod
    def make(name: str, properties: dict[str, Any], account_id: str, region_name: str) -> str:
        """Create the resource in moto's backend; return its physical id."""
        raise NotImplementedError


class StackSubscription(_Made, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def make(name: str, properties: dict[str, Any], account_id: str, region_name: str) -> str:
        made = sns_backends[account_id][region_name].subscribe(
            properties["TopicArn"], properties["Endpoint"], properties["Protocol"]
        )
        return str(made.arn)


class StackAlarm(_Made, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def make(name: str, properties: dict[str, Any], account_id: str, region_name: str) -> str:
        alarm = properties.get("AlarmName") or name
        cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=alarm,
            namespace=properties["Namespace"],
            metric_name=properties["MetricName"],
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]),
            period=int(properties["Period"]),
            threshold=float(properties["Threshold"]),
            statistic=properties["Statistic"],
            description=properties.get("AlarmDescription", ""),
            dimensions=list(properties.get("Dimensions", [])),
            alarm_actions=list(properties.get("AlarmActions", [])),
            treat_missing_data=properties.get("TreatMissingData"),
        )
        return str(alarm)


class StackSchedule(_Made, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::Schedule"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def make(name: str, properties: dict[str, Any], account_id: str, region_name: str) -> str:
        schedule = properties.get("Name") or name
        scheduler_backends[account_id][region_name].create_schedule(
            description=properties.get("Description", ""),
            end_date=properties.get("EndDate"),
            flexible_time_window=properties["FlexibleTimeWindow"],
            group_name=properties.get("GroupName", "default"),
            kms_key_arn=properties.get("KmsKeyArn"),
            name=schedule,
            schedule_expression=properties["ScheduleExpression"],
            schedule_expression_timezone=properties.get("ScheduleExpressionTimezone", "UTC"),
            start_date=properties.get("StartDate"),
            state=properties.get("State", "ENABLED"),
            target=properties["Target"],
            action_after_completion=None,
        )
        return str(schedule)


# moto caches its map of types to models; let it see these.
parsing.get_model_map.cache_clear()
parsing.get_name_type_map.cache_clear()

_execute_change_set = CloudFormationBackend.execute_change_set


def _execute_change_set_with_outputs(
    self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
) -> None:
    """As moto does, then compute the outputs of the template the stack now has (what AWS
    shows once a change set is executed)."""
    _execute_change_set(self, change_set_name, stack_name)
    for change_set in self.change_sets.values():
        if change_set_name in (change_set.change_set_id, change_set.change_set_name):
            stack = self.stacks[change_set.stack_id]
            stack._parse_template()
            stack.output_map = stack._create_output_map()


if (
    getattr(CloudFormationBackend.execute_change_set, "__name__", "")
    != "_execute_change_set_with_outputs"
):
    CloudFormationBackend.execute_change_set = _execute_change_set_with_outputs  # type: ignore[method-assign]
