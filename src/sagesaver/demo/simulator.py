"""An embedded AWS simulator: moto's server on 127.0.0.1, plus seeding helpers.

Used by ``sagesaver demo`` and the end-to-end tests (the benchmarks serve from a subclass with
speed-ups of their own, ``benchmarks/fast_moto``). The server runs in this process, so helpers
can also adjust moto's in-memory state where the API cannot: make an endpoint look older than
it is, or scale a variant to 0 instances.

The parts, each in its own module: the HTTP server keeping connections open as AWS does
(``server``); a WSGI middleware that counts and times requests per operation, adds latency
and answers with faults (``middleware``, ``wire``); and the AWS behaviours moto lacks that
SageSaver's decisions depend on (``behaviours``, ``search``, ``price_list``). This module
holds :class:`Simulator` and :class:`Fleet`, the names the demo and the tests use.

Step Functions: :meth:`Simulator.execute_state_machines` has moto's ASL interpreter run each
execution, its Lambda tasks answered by Python handlers (``sim.functions.register``,
``functions``) and its S3 reads by the simulator's S3; :meth:`Simulator.wait_for_execution`
waits for one to end. The interpreter differs from AWS in places: a Distributed Map's
tolerated failure threshold is added at the wire (``map_tolerance``); what is left
(``$$.Execution.StartTime``'s format, an uncaught threshold error's name, ``$.a[0].b``, the
account it calls in, limits not enforced) is listed in ``executions``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3

from sagesaver.demo.behaviours import BEHAVIOURS, INFERENCE_COMPONENTS, WARM_POOLS
from sagesaver.demo.executions import Execution, wait_for_execution
from sagesaver.demo.metric_data import IncompleteMetrics
from sagesaver.demo.middleware import Middleware, TransientFaults
from sagesaver.demo.server import request_handler
from sagesaver.demo.wire import Fault, WsgiApp

__all__ = [
    "ACCOUNT_ID",
    "BEHAVIOURS",
    "IMAGE",
    "ROLE_ARN",
    "Execution",
    "Fault",
    "Fleet",
    "IncompleteMetrics",
    "Simulator",
    "TransientFaults",
    "VariantSpec",
    "hours_ago",
    "image_in",
    "role_in",
]


ACCOUNT_ID = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sagesaver-demo"
IMAGE = f"{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/demo-model:1"


def role_in(region: str) -> str:
    """The demo's execution role, as an ARN of ``region``'s partition."""
    from sagesaver.core.partitions import partition_of, role_arn

    return role_arn(partition_of(region), ACCOUNT_ID, "sagesaver-demo")


def image_in(region: str) -> str:
    """The demo model's image in ``region``'s ECR (``amazonaws.com.cn`` in China)."""
    from sagesaver.core.partitions import endpoint_host

    return f"{ACCOUNT_ID}.dkr.{endpoint_host('ecr', region)}/demo-model:1"


class Simulator:
    """moto's server on a free loopback port, in a background thread."""

    def __init__(self) -> None:
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.behaviours = BEHAVIOURS
        self.middleware = Middleware(self.backend_app(), self.behaviours)

        self._server = make_server(
            "127.0.0.1",
            0,
            self.middleware,
            threaded=True,
            request_handler=request_handler(self.middleware),
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.port = int(port)
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = threading.Lock()
        # Lambda functions served by Python handlers (``functions.py``).
        self.functions = self.behaviours.functions
        self._executing = False

    def backend_app(self) -> WsgiApp:
        """The WSGI application that answers AWS requests: moto's server, as ``moto_server``
        starts it (the benchmarks' simulator gives one with speed-ups of its own)."""
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app: WsgiApp = DomainDispatcherApplication(create_backend_app)
        return app

    def stop(self) -> None:
        """Stop serving."""
        self.middleware.release()
        self._server.shutdown()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget every resource (moto's reset API) and the request counts."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        self.middleware.clear()
        self.middleware.faults_sent.clear()
        self.middleware.fault = None
        self.middleware.latency_s = 0.0
        self.middleware.release()
        self.behaviours.reset()
        if self._executing:
            self.execute_state_machines(False)
        with self._clients_lock:  # another account's credentials died with moto's STS state
            self._clients = {k: c for k, c in self._clients.items() if k[2] == ACCOUNT_ID}

    def execute_state_machines(self, on: bool = True) -> None:
        """Have ``StartExecution`` really run the state machine's definition (moto's ASL
        interpreter, ``execute_state_machine`` in moto's configuration), its Lambda tasks
        answered by the handlers registered in :attr:`functions` and its S3 reads by this
        simulator's S3; ``on=False``: back to moto's default (executions that only record
        their input). :meth:`reset` turns it off.

        Both switches are process-wide, so one simulator per process can run executions:
        moto's configuration (set through this server's ``/moto-api/config``) and the
        ``MOTO_PORT`` environment variable, which moto's interpreter reads to reach its own
        server at ``http://localhost:$MOTO_PORT`` for every service a task calls (credentials
        ``ak``/``sk``: moto's default account, :data:`ACCOUNT_ID`). State machines made while
        it is off are not seen while it is on, and the other way round (moto keeps them in two
        backends). A ``mock_aws`` active in the process at the same time would take the
        interpreter's calls instead of this server. See :mod:`sagesaver.demo.executions` for
        where moto's interpreter and AWS differ.
        """
        import json

        body = json.dumps({"stepfunctions": {"execute_state_machine": on}}).encode()
        request = urllib.request.Request(
            f"{self.url}/moto-api/config",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass
        self.behaviours.executions = on
        if on:
            os.environ["MOTO_PORT"] = str(self.port)
        elif os.environ.get("MOTO_PORT") == str(self.port):
            os.environ.pop("MOTO_PORT")
        self._executing = on

    def wait_for_execution(
        self, execution_arn: str, timeout_s: float = 60.0, poll_s: float = 0.05
    ) -> Execution:
        """Poll ``DescribeExecution`` until the execution is no longer ``RUNNING`` (at most
        ``timeout_s``: then TimeoutError); its status, output (parsed), error and cause."""
        return wait_for_execution(
            self.client("stepfunctions", execution_arn.split(":")[3]),
            execution_arn,
            timeout_s,
            poll_s,
        )

    def env(self, region: str = "us-east-1") -> dict[str, str]:
        """Environment variables that point the boto3 chain at this simulator."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": region,
        }

    @contextmanager
    def environment(self, region: str = "us-east-1") -> Iterator[None]:
        """Set :meth:`env` in ``os.environ`` for the duration of the block."""
        saved = {k: os.environ.get(k) for k in [*self.env(region), "AWS_PROFILE"]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(self.env(region))
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def client(self, service: str, region: str, account: str = ACCOUNT_ID) -> Any:
        """A plain boto3 client against the simulator, for seeding (cached); in another
        ``account`` through an assumed role, as moto keeps one state per account."""
        key = (service, region, account)
        with self._clients_lock:
            if key not in self._clients:
                credentials: dict[str, str] = {
                    "aws_access_key_id": "testing",
                    "aws_secret_access_key": "testing",
                }
                if account != ACCOUNT_ID:
                    sts = boto3.client(
                        "sts",
                        region_name=region,
                        endpoint_url=self.url,
                        aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                    )
                    assumed = sts.assume_role(
                        RoleArn=f"arn:aws:iam::{account}:role/seed", RoleSessionName="seed"
                    )["Credentials"]
                    credentials = {
                        "aws_access_key_id": assumed["AccessKeyId"],
                        "aws_secret_access_key": assumed["SecretAccessKey"],
                        "aws_session_token": assumed["SessionToken"],
                    }
                self._clients[key] = boto3.client(  # type: ignore[call-overload]
                    service, region_name=region, endpoint_url=self.url, **credentials
                )
            return self._clients[key]


@dataclass(frozen=True)
class VariantSpec:
    """A production variant to create: name, instance type and instance count; or, with
    ``serverless_memory_mb``, a serverless variant (with ``provisioned_concurrency``)."""

    name: str
    instance_type: str = "ml.m5.large"
    count: int = 1
    serverless_memory_mb: int | None = None
    provisioned_concurrency: int = 0

    def production_variant(self, model: str) -> dict[str, Any]:
        """The ``ProductionVariants`` item of CreateEndpointConfig for this variant."""
        variant: dict[str, Any] = {"VariantName": self.name, "ModelName": model}
        if self.serverless_memory_mb is None:
            variant["InstanceType"] = self.instance_type
            variant["InitialInstanceCount"] = max(1, self.count)
            return variant
        serverless: dict[str, Any] = {
            "MemorySizeInMB": self.serverless_memory_mb,
            "MaxConcurrency": max(1, self.provisioned_concurrency),
        }
        if self.provisioned_concurrency:
            serverless["ProvisionedConcurrency"] = self.provisioned_concurrency
        variant["ServerlessConfig"] = serverless
        return variant


def _sagemaker_backend(region: str, account: str = ACCOUNT_ID) -> Any:
    from moto.backends import get_backend

    return get_backend("sagemaker")[account][region]


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


class Fleet:
    """Seeds SageMaker resources, metrics and topics into a :class:`Simulator`."""

    def __init__(self, sim: Simulator, account: str = ACCOUNT_ID) -> None:
        self.sim = sim
        self.account = account
        self._models: set[tuple[str, str]] = set()

    def _model(self, region: str, name: str = "demo-model") -> str:
        if (region, name) not in self._models:
            self.sim.client("sagemaker", region, self.account).create_model(
                ModelName=name,
                ExecutionRoleArn=role_in(region),
                PrimaryContainer={"Image": image_in(region)},
            )
            self._models.add((region, name))
        return name

    def endpoint(
        self,
        region: str,
        name: str,
        variants: Iterable[VariantSpec] = (VariantSpec("AllTraffic"),),
        tags: dict[str, str] | None = None,
        changed: datetime | None = None,
        asynchronous: bool = False,
        models: bool = True,
    ) -> str:
        """Create an InService endpoint (own configuration); return its ARN.

        ``changed`` backdates its creation and last modification, and its configuration's
        creation. A variant with count 0
        is created with one instance, then scaled to 0 in the simulator's state.
        ``asynchronous`` gives the configuration an ``AsyncInferenceConfig``. ``models=False``
        leaves ``ModelName`` out of its variants, as a configuration made to host inference
        components is (moto requires one: it is removed from the simulator's state).
        """
        specs = list(variants)
        model = self._model(region)
        sagemaker = self.sim.client("sagemaker", region, self.account)
        extra: dict[str, Any] = {}
        if asynchronous:
            extra["AsyncInferenceConfig"] = {
                "OutputConfig": {"S3OutputPath": f"s3://{name}-results/out/"}
            }
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[v.production_variant(model) for v in specs],
            **extra,
        )
        arn: str = sagemaker.create_endpoint(
            EndpointName=name,
            EndpointConfigName=f"{name}-config",
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )["EndpointArn"]
        backend = _sagemaker_backend(region, self.account)
        endpoint = backend.endpoints[name]
        if not models:
            self._without_models(region, name)
        if changed is not None:
            endpoint.creation_time = endpoint.last_modified_time = _naive_utc(changed)
            backend.endpoint_configs[f"{name}-config"].creation_time = _naive_utc(changed)
        counts = {v.name: v.count for v in specs}
        for variant in endpoint.production_variants:
            if counts.get(variant["VariantName"]) == 0:
                variant["CurrentInstanceCount"] = 0
                variant["DesiredInstanceCount"] = 0
        return arn

    def _without_models(self, region: str, endpoint: str) -> None:
        """Remove ``ModelName`` from the variants of ``endpoint``'s configuration."""
        backend = _sagemaker_backend(region, self.account)
        found = backend.endpoints.get(endpoint)
        config = backend.endpoint_configs.get(found.endpoint_config_name) if found else None
        for variant in config.production_variants if config is not None else ():
            variant.pop("ModelName", None)

    def invocations(
        self, region: str, endpoint: str, variant: str, points: Iterable[tuple[datetime, float]]
    ) -> None:
        """Publish ``Invocations`` datapoints (time, value) for one variant."""
        data = [
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": variant},
                ],
                "Timestamp": moment,
                "Value": value,
                "Unit": "None",
            }
            for moment, value in points
        ]
        cloudwatch = self.sim.client("cloudwatch", region, self.account)
        for offset in range(0, len(data), 1000):
            cloudwatch.put_metric_data(
                Namespace="AWS/SageMaker", MetricData=data[offset : offset + 1000]
            )

    def inference_component(
        self,
        region: str,
        endpoint: str,
        name: str,
        copies: int = 1,
        changed: datetime | None = None,
        status: str = "InService",
    ) -> str:
        """Add an inference component on ``endpoint`` (kept by the simulator); its ARN. The
        endpoint's configuration, when the simulator has it, then names no model, as the
        configuration of an endpoint that hosts inference components does."""
        self._without_models(region, endpoint)
        arn = f"arn:aws:sagemaker:{region}:{self.account}:inference-component/{name}"
        moment = _naive_utc(changed or datetime.now(timezone.utc))
        INFERENCE_COMPONENTS.setdefault((self.account, region), {})[name] = {
            "InferenceComponentName": name,
            "InferenceComponentArn": arn,
            "EndpointName": endpoint,
            "EndpointArn": f"arn:aws:sagemaker:{region}:{self.account}:endpoint/{endpoint}",
            "VariantName": "AllTraffic",
            "InferenceComponentStatus": status,
            "CreationTime": moment,
            "LastModifiedTime": moment,
            "RuntimeConfig": {"DesiredCopyCount": copies, "CurrentCopyCount": copies},
        }
        return arn

    def metric(
        self,
        region: str,
        metric: str,
        dimensions: dict[str, str],
        points: Iterable[tuple[datetime, float]],
        namespace: str = "AWS/SageMaker",
    ) -> None:
        """Publish datapoints (time, value) of any metric with the given dimensions."""
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": moment,
                "Value": value,
                "Unit": "None",
            }
            for moment, value in points
        ]
        cloudwatch = self.sim.client("cloudwatch", region, self.account)
        for offset in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[offset : offset + 1000])

    def notebook(
        self,
        region: str,
        name: str,
        instance_type: str = "ml.t3.medium",
        status: str = "InService",
        lifecycle_config: str | None = None,
        tags: dict[str, str] | None = None,
        changed: datetime | None = None,
    ) -> str:
        """Create a notebook instance (and its lifecycle configuration); return its ARN."""
        sagemaker = self.sim.client("sagemaker", region, self.account)
        extra: dict[str, Any] = {}
        if lifecycle_config is not None:
            with contextlib.suppress(sagemaker.exceptions.ClientError):  # already created
                sagemaker.create_notebook_instance_lifecycle_config(
                    NotebookInstanceLifecycleConfigName=lifecycle_config,
                    OnStart=[{"Content": "IyEvYmluL2Jhc2gK"}],
                )
            extra["LifecycleConfigName"] = lifecycle_config
        arn: str = sagemaker.create_notebook_instance(
            NotebookInstanceName=name,
            InstanceType=instance_type,
            RoleArn=role_in(region),
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            **extra,
        )["NotebookInstanceArn"]
        if status == "Stopped":
            sagemaker.stop_notebook_instance(NotebookInstanceName=name)
        if changed is not None:
            instance = _sagemaker_backend(region, self.account).notebook_instances[name]
            instance.creation_time = instance.last_modified_time = _naive_utc(changed)
        return arn

    def training_job(
        self,
        region: str,
        name: str,
        ended: datetime,
        instance_type: str = "ml.m5.large",
        count: int = 1,
        warm_pool: str | None = "Available",
        keep_alive_s: int = 3600,
        tags: dict[str, str] | None = None,
    ) -> str:
        """A completed training job that ended at ``ended`` (started an hour before), with a
        warm pool in state ``warm_pool`` (None: none) kept ``keep_alive_s``; return its ARN."""
        sagemaker = self.sim.client("sagemaker", region, self.account)
        config: dict[str, Any] = {
            "InstanceType": instance_type,
            "InstanceCount": count,
            "VolumeSizeInGB": 30,
        }
        if warm_pool is not None:
            config["KeepAlivePeriodInSeconds"] = keep_alive_s
        arn: str = sagemaker.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": image_in(region), "TrainingInputMode": "File"},
            RoleArn=role_in(region),
            OutputDataConfig={"S3OutputPath": f"s3://{name}-output/"},
            ResourceConfig=config,
            StoppingCondition={"MaxRuntimeInSeconds": 86400},
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )["TrainingJobArn"]
        job = _sagemaker_backend(region, self.account).training_jobs[name]
        job.creation_time = job.training_start_time = _naive_utc(ended - timedelta(hours=1))
        job.training_end_time = job.last_modified_time = _naive_utc(ended)
        if warm_pool is not None:
            WARM_POOLS[(self.account, region, name)] = {"Status": warm_pool}
        return arn

    def warm_pool(self, region: str, name: str) -> str | None:
        """The status of a training job's warm pool in the simulator (None: it has none)."""
        pool = WARM_POOLS.get((self.account, region, name))
        return None if pool is None else str(pool["Status"])

    def set_warm_pool(self, region: str, name: str, status: str) -> None:
        """Change a warm pool's status, as SageMaker does when a job reuses it."""
        WARM_POOLS[(self.account, region, name)] = {"Status": status}

    def topic(self, region: str, name: str) -> str:
        """Create an SNS topic; return its ARN."""
        arn: str = self.sim.client("sns", region, self.account).create_topic(Name=name)["TopicArn"]
        return arn

    def published(self, topic_arn: str) -> list[dict[str, Any]]:
        """Messages published to a topic, as the simulator recorded them."""
        from moto.backends import get_backend

        region = topic_arn.split(":")[3]
        topic = get_backend("sns")[ACCOUNT_ID][region].topics[topic_arn]
        return [
            {
                "MessageId": message_id,
                "Message": message,
                "Subject": subject,
                "MessageAttributes": {
                    name: value.get("Value", value.get("StringValue"))
                    for name, value in (attributes or {}).items()
                },
            }
            for message_id, message, subject, attributes, *_ in topic.sent_notifications
        ]


def hours_ago(now: datetime, hours: float) -> datetime:
    """``now`` minus ``hours``."""
    return now - timedelta(hours=hours)
