"""Restoring an endpoint from its backup, in AWS: what exists now, what would be created, and
each call. The pipeline (:mod:`sagesaver.pipelines.restore`) records each step in the ledger as
it is done, so that a restore that stopped half-way is resumed, never repeated.

A restore is: the models and the endpoint configuration that are missing (one that exists is
used as it is when it is as the backup describes it; :class:`RestoreRefused` when it differs),
then ``CreateEndpoint``, then the :class:`Step` s that need the endpoint: its live weights and
instance counts (once it is ``InService``), and the Application Auto Scaling targets, policies
and scheduled actions of its variants. Each step is one call that sets what the backup says,
so sending it again (a run that died before recording it) changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws.endpoints import SCALING_NAMESPACE, accepted, is_missing
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.formats import plural
from sagesaver.core.sealing import environment_names, masked_like, without_unkept


class RestoreRefused(Exception):
    """Restoring would change a resource this restore did not create."""


@dataclass(frozen=True)
class Endpoint:
    """An endpoint as it is now: which one (ARN and creation time), and its status."""

    arn: str
    created: datetime
    status: str


def endpoint_now(aws: Aws, region: str, name: str) -> Endpoint | None:
    """The endpoint named ``name`` now (``DescribeEndpoint``), or None when there is none."""
    try:
        described = aws.sagemaker(region).describe_endpoint(EndpointName=name)
    except AWS_ERRORS as exc:
        if is_missing(exc):
            return None
        raise
    return Endpoint(
        str(described["EndpointArn"]), described["CreationTime"], str(described["EndpointStatus"])
    )


def _exists(call: Any, **kwargs: Any) -> dict[str, Any] | None:
    try:
        return dict(call(**kwargs))
    except AWS_ERRORS as exc:
        if scan_error(exc, "", "").code in ("ValidationException", "ResourceNotFound"):
            return None
        raise


def _same_as_backup(
    client: Any, operation: str, existing: dict[str, Any] | None, spec: dict[str, Any], what: str
) -> bool:
    """True when ``what`` exists as the backup describes it (it is used as it is); False when
    it does not exist. Raises :class:`RestoreRefused` when a different one has its name."""
    if existing is None:
        return False
    if accepted(client, operation, existing) != spec:
        raise RestoreRefused(
            f"a different {what} exists: restore never changes a resource it did not create"
        )
    return True


def _model_line(spec: dict[str, Any]) -> str:
    containers = [spec["PrimaryContainer"]] if spec.get("PrimaryContainer") else []
    containers += spec.get("Containers", [])
    images = ", ".join(str(c.get("Image", c.get("ModelPackageName", "?"))) for c in containers)
    line = f"image {images or '-'}; role {spec.get('ExecutionRoleArn', '-')}"
    names = environment_names(spec)  # the names a reviewer checks; never their values
    return line + (f"; environment {', '.join(names)}" if names else "")


def _config_line(spec: dict[str, Any]) -> str:
    parts = []
    for v in spec.get("ProductionVariants", []):
        size = (
            "serverless"
            if v.get("ServerlessConfig")
            else f"{v.get('InstanceType', '?')} x {v.get('InitialInstanceCount', '?')}"
        )
        parts.append(
            f"{v['VariantName']}: {size}, weight {v.get('InitialVariantWeight', 1.0):g}, "
            f"model {v.get('ModelName', '-')}"
        )
    return "; ".join(parts) or "no variants"


@dataclass
class Parts:
    """The models and configuration CreateEndpoint needs: a line for each, and those to create."""

    lines: list[str] = field(default_factory=list)
    missing: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def check_parts(aws: Aws, saved: dict[str, Any], apply: bool) -> Parts:
    """Which of the backup's models and configuration exist as it describes them (used as they
    are) and which are missing. Raises :class:`RestoreRefused` when one of its name differs."""
    client = aws.sagemaker(saved["region"])
    verb = "created" if apply else "would create"
    parts = Parts()
    for model in saved["models"]:
        spec = model["spec"]
        existing = _exists(client.describe_model, ModelName=spec["ModelName"])
        if existing is not None:  # compared by names where the backup's values are not at hand
            existing = masked_like(existing, spec)
        if _same_as_backup(client, "CreateModel", existing, spec, f"model {spec['ModelName']}"):
            parts.lines.append(f"model {spec['ModelName']}: exists, used as it is")
            continue
        parts.lines.append(f"model {spec['ModelName']}: {verb} ({_model_line(spec)})")
        parts.missing.append(("model", model))
    config = saved["endpoint_config"]
    spec = config["spec"]
    existing = _exists(
        client.describe_endpoint_config, EndpointConfigName=spec["EndpointConfigName"]
    )
    what = f"endpoint configuration {spec['EndpointConfigName']}"
    if _same_as_backup(client, "CreateEndpointConfig", existing, spec, what):
        parts.lines.append(f"{what}: exists, used as it is")
    else:
        parts.lines.append(f"{what}: {verb} ({_config_line(spec)})")
        parts.missing.append(("config", config))
    return parts


def create_parts(aws: Aws, saved: dict[str, Any], parts: Parts) -> None:
    """Create the missing models and configuration, with their tags."""
    client = aws.sagemaker(saved["region"])
    for kind, item in parts.missing:
        tags = {"Tags": item["tags"]} if item["tags"] else {}
        if kind == "model":  # without the variables whose values the backup did not keep
            client.create_model(**without_unkept(item["spec"]), **tags)
        else:
            client.create_endpoint_config(**item["spec"], **tags)


def create_endpoint(aws: Aws, saved: dict[str, Any]) -> str:
    """``CreateEndpoint`` with the backup's configuration, tags and deployment configuration;
    returns its ARN."""
    endpoint = saved["endpoint"]
    extra: dict[str, Any] = {}
    if endpoint.get("Tags"):
        extra["Tags"] = endpoint["Tags"]
    if endpoint.get("DeploymentConfig"):
        extra["DeploymentConfig"] = endpoint["DeploymentConfig"]
    answer = aws.sagemaker(saved["region"]).create_endpoint(
        EndpointName=endpoint["EndpointName"],
        EndpointConfigName=endpoint["EndpointConfigName"],
        **extra,
    )
    return str(answer["EndpointArn"])


_WEIGHTS_STATES = {
    "planned": "(would be set once InService)",
    "done": "(set once InService)",
    "earlier": "(set by an earlier restore)",
}
_CREATE_STATES = {
    "planned": "would create",
    "done": "created",
    "earlier": "created by an earlier restore",
}


@dataclass(frozen=True)
class Step:
    """One step done on the endpoint once it exists: ``key`` names it in every run (the same
    backup gives the same keys), ``subjects`` say what it sets, ``call`` and ``params`` how."""

    key: str
    subjects: tuple[str, ...]
    call: str
    params: dict[str, Any]

    def lines(self, state: str) -> list[str]:
        """What the step does, ``planned`` (dry run), ``done`` now or done ``earlier``."""
        if self.call == "weights":
            return [f"{subject} {_WEIGHTS_STATES[state]}" for subject in self.subjects]
        return [f"{subject}: {_CREATE_STATES[state]}" for subject in self.subjects]

    @property
    def summary(self) -> str:
        """The step in a few words, for the ledger."""
        if self.call == "weights":
            variants = ", ".join(c["VariantName"] for c in self.params["changes"])
            return f"live weights and instance counts of {variants}"
        return self.subjects[0]


def _live_changes(saved: dict[str, Any]) -> list[dict[str, Any]]:
    """The live weights and counts that differ from the configuration's initial values."""
    initial = {
        v["VariantName"]: (v.get("InitialVariantWeight", 1.0), v.get("InitialInstanceCount"))
        for v in saved["endpoint_config"]["spec"].get("ProductionVariants", [])
    }
    changes = []
    for live in saved["endpoint"].get("LiveVariants", []):
        weight, count = initial.get(live["VariantName"], (None, None))
        if live.get("Weight") is None or live.get("InstanceCount") is None:
            continue
        if (float(live["Weight"]), int(live["InstanceCount"])) != (float(weight or 0), count):
            changes.append(
                {
                    "VariantName": live["VariantName"],
                    "DesiredWeight": float(live["Weight"]),
                    "DesiredInstanceCount": int(live["InstanceCount"]),
                }
            )
    return changes


def later_steps(saved: dict[str, Any]) -> list[Step]:
    """The steps after ``CreateEndpoint``, in the order they are done: the live weights (when
    they differed from the configuration), then each scaling target, policy, scheduled action."""
    steps = []
    changes = _live_changes(saved)
    if changes:
        subjects = tuple(
            f"variant {c['VariantName']}: weight {c['DesiredWeight']:g}, "
            f"{plural(c['DesiredInstanceCount'], 'instance')} as it ran"
            for c in changes
        )
        steps.append(Step("weights", subjects, "weights", {"changes": changes}))
    scaling = saved["scaling"]
    for target in scaling["targets"]:
        key = f"target {target['ResourceId']} {target['ScalableDimension']}"
        subject = f"scaling target {target['ResourceId']}"
        steps.append(Step(key, (subject,), "register_scalable_target", target))
    for policy in scaling["policies"]:
        key = f"policy {policy['ResourceId']} {policy['PolicyName']}"
        subject = f"scaling policy {policy['PolicyName']}"
        steps.append(Step(key, (subject,), "put_scaling_policy", policy))
    for action in scaling.get("scheduled_actions", []):
        key = f"scheduled {action['ResourceId']} {action['ScheduledActionName']}"
        subject = f"scheduled action {action['ScheduledActionName']}"
        steps.append(Step(key, (subject,), "put_scheduled_action", action))
    return steps


def run_step(aws: Aws, saved: dict[str, Any], step: Step, wait_minutes: float = 30) -> None:
    """Do one step on the endpoint: the live weights once it is ``InService`` (waiting up to
    ``wait_minutes``), or one Application Auto Scaling call."""
    region = saved["region"]
    if step.call == "weights":
        client = aws.sagemaker(region)
        name = saved["endpoint"]["EndpointName"]
        attempts = max(1, int(wait_minutes * 60 / 15))
        client.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 15, "MaxAttempts": attempts}
        )
        client.update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=step.params["changes"]
        )
        return
    autoscaling = aws.client("application-autoscaling", region)
    getattr(autoscaling, step.call)(ServiceNamespace=SCALING_NAMESPACE, **step.params)
