"""Canvas and the other Studio app types (Stubber: moto has no Studio apps)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from botocore.stub import ANY, Stubber

from sagesaver.aws.session import Aws
from sagesaver.core.policy import parse_policy
from sagesaver.ledger import SqliteLedger
from sagesaver.pipelines.studio import studio_run
from tests.pipelines.test_studio import ARN, NOW, REGION, aws, describe, key  # noqa: F401
from tests.prices import example_pricer

TOPIC = f"arn:aws:sns:{REGION}:123456789012:admins"


def app(user: str, app_type: str, name: str = "default") -> dict[str, Any]:
    return {
        "DomainId": "d-1",
        "UserProfileName": user,
        "AppType": app_type,
        "AppName": name,
        "Status": "InService",
    }


def stub_apps(stub: Stubber, apps: list[tuple[str, str]]) -> None:
    """No domains (no gaps), then the apps, each described and tagged."""
    stub.add_response("list_domains", {"Domains": []})
    stub.add_response("list_apps", {"Apps": [app(user, kind) for user, kind in apps]})
    for user, kind in apps:
        answer = describe(user, kind, "default", None, "ml.t3.medium", "UserProfileName")
        if kind == "Canvas":
            answer.pop("ResourceSpec")
        stub.add_response("describe_app", answer, key(user, kind, "default", "UserProfileName"))
        stub.add_response(
            "list_tags", {"Tags": []}, {"ResourceArn": ARN.format(user, kind.lower(), "default")}
        )


def canvas_answer(points: dict[str, list[tuple[Any, float]]]) -> dict[str, Any]:
    return {
        "MetricDataResults": [
            {
                "Id": query_id,
                "Timestamps": [t for t, _ in found],
                "Values": [v for _, v in found],
                "StatusCode": "Complete",
            }
            for query_id, found in points.items()
        ]
    }


def test_canvas_is_judged_by_time_since_last_active(aws: Aws) -> None:  # noqa: F811
    policy = parse_policy("studio_apps: {idle_hours: 3}")
    with Stubber(aws.sagemaker(REGION)) as stub, Stubber(aws.cloudwatch(REGION)) as cw:
        stub_apps(
            stub, [("ana", "Canvas"), ("ben", "Canvas"), ("cid", "Canvas"), ("dee", "TensorBoard")]
        )
        # ana: 10 min ago the metric said 5 h since the last activity; ben: active 5 min
        # before the newest datapoint; cid: no datapoint in the window (unknown)
        cw.add_response(
            "get_metric_data",
            canvas_answer(
                {
                    "cv0": [(NOW - timedelta(minutes=10), 5 * 3600.0)],
                    "cv1": [(NOW - timedelta(minutes=10), 300.0), (NOW - timedelta(hours=2), 50.0)],
                    "cv2": [],
                }
            ),
            {
                "MetricDataQueries": ANY,
                "StartTime": NOW - timedelta(hours=4),
                "EndTime": NOW,
                "ScanBy": "TimestampDescending",
            },
        )
        result = studio_run(aws, [REGION], policy, NOW, apply=False, ledger=None)
        stub.assert_no_pending_responses()
        cw.assert_no_pending_responses()
    assert result.errors == []
    got = {a.decision.resource.name: a.decision for a in result.apps}
    ana = got["ana/Canvas/default"]
    assert ana.idle and ana.action.value == "notify"
    # the datapoint covers [now - 10 min, now - 5 min): the activity was at latest 5 h before
    assert ana.idle_hours == 5.08
    assert "Canvas bills its workspace session until the user logs out" in ana.reason
    assert ana.hourly_cost_usd is None  # no Canvas session price in the table
    assert got["ben/Canvas/default"].rule == "active"
    assert got["cid/Canvas/default"].rule == "activity-unknown"
    assert not got["cid/Canvas/default"].idle
    # every app type is judged; one that reports no user activity is unknown, never idle
    assert got["dee/TensorBoard/default"].rule == "activity-unknown"
    assert not got["dee/TensorBoard/default"].idle


def test_other_app_types_are_judged_by_their_reported_activity(aws: Aws) -> None:  # noqa: F811
    policy = parse_policy("studio_apps: {idle_hours: 3}")
    with Stubber(aws.sagemaker(REGION)) as stub:
        stub.add_response("list_domains", {"Domains": []})
        kinds = ("RSessionGateway", "TensorBoard", "RStudioServerPro")
        stub.add_response("list_apps", {"Apps": [app(k.lower(), k) for k in kinds]})
        lasts = (NOW - timedelta(hours=6), NOW - timedelta(minutes=20), None)
        for kind, last in zip(kinds, lasts, strict=True):
            user = kind.lower()
            answer = describe(user, kind, "default", last, "ml.t3.medium", "UserProfileName")
            stub.add_response("describe_app", answer, key(user, kind, "default", "UserProfileName"))
            stub.add_response(
                "list_tags",
                {"Tags": []},
                {"ResourceArn": ARN.format(user, kind.lower(), "default")},
            )
        result = studio_run(
            aws, [REGION], policy, NOW, apply=False, ledger=None, pricer=example_pricer()
        )
        stub.assert_no_pending_responses()
    got = {a.decision.resource.name.split("/")[1]: a.decision for a in result.apps}
    assert (got["RSessionGateway"].rule, got["RSessionGateway"].action.value) == (
        "idle-studio-app",
        "notify",
    )
    assert got["RSessionGateway"].hourly_cost_usd == 0.05
    assert got["TensorBoard"].rule == "active"
    assert got["RStudioServerPro"].rule == "activity-unknown"


def test_canvas_metric_queries_name_the_user(aws: Aws) -> None:  # noqa: F811
    policy = parse_policy("studio_apps: {idle_hours: 3, app_types: [Canvas]}")
    with Stubber(aws.sagemaker(REGION)) as stub, Stubber(aws.cloudwatch(REGION)) as cw:
        stub_apps(stub, [("ana", "Canvas")])
        query = {
            "Id": "cv0",
            "MetricStat": {
                "Metric": {
                    "Namespace": "/aws/sagemaker/Canvas/AppActivity",
                    "MetricName": "TimeSinceLastActive",
                    "Dimensions": [
                        {"Name": "DomainId", "Value": "d-1"},
                        {"Name": "UserProfileName", "Value": "ana"},
                    ],
                },
                "Period": 300,
                "Stat": "Minimum",
            },
            "ReturnData": True,
        }
        cw.add_response(
            "get_metric_data",
            canvas_answer({"cv0": [(NOW - timedelta(minutes=10), 60.0)]}),
            {
                "MetricDataQueries": [query],
                "StartTime": ANY,
                "EndTime": ANY,
                "ScanBy": "TimestampDescending",
            },
        )
        result = studio_run(aws, [REGION], policy, NOW, apply=False, ledger=None)
        cw.assert_no_pending_responses()
    assert [a.decision.rule for a in result.apps] == ["active"]


def test_unreadable_canvas_metrics_are_an_error_and_never_idle(aws: Aws) -> None:  # noqa: F811
    policy = parse_policy("studio_apps: {idle_hours: 3, app_types: [Canvas]}")
    with Stubber(aws.sagemaker(REGION)) as stub, Stubber(aws.cloudwatch(REGION)) as cw:
        stub_apps(stub, [("ana", "Canvas")])
        cw.add_client_error("get_metric_data", "AccessDenied", "not allowed", 403)
        result = studio_run(aws, [REGION], policy, NOW, apply=False, ledger=None)
    assert [e.operation for e in result.errors] == ["GetMetricData"]
    assert [(a.decision.rule, a.decision.idle) for a in result.apps] == [
        ("activity-unknown", False)
    ]


def test_an_idle_canvas_app_is_deleted_after_a_fresh_read(aws: Aws, tmp_path: Path) -> None:  # noqa: F811
    policy = parse_policy(
        "studio_apps: {idle_hours: 3, action: delete, grace_hours: 0, app_types: [Canvas]}\n"
        f"notify: {{sns_topic_arn: '{TOPIC}'}}\n"
    )
    five_hours = canvas_answer({"cv0": [(NOW - timedelta(minutes=10), 5 * 3600.0)]})
    with (
        Stubber(aws.sagemaker(REGION)) as stub,
        Stubber(aws.cloudwatch(REGION)) as cw,
        Stubber(aws.sns(REGION)) as sns,
    ):
        stub_apps(stub, [("ana", "Canvas"), ("bo", "Canvas")])
        both = canvas_answer(
            {
                "cv0": [(NOW - timedelta(minutes=10), 5 * 3600.0)],
                "cv1": [(NOW - timedelta(minutes=10), 6 * 3600.0)],
            }
        )
        cw.add_response("get_metric_data", both)
        sns.add_response("publish", {"MessageId": "m-1"})
        canvas = describe("ana", "Canvas", "default", None, "x", "UserProfileName")
        canvas.pop("ResourceSpec")
        stub.add_response(
            "describe_app", canvas, key("ana", "Canvas", "default", "UserProfileName")
        )
        no_tags = {"Tags": []}
        stub.add_response("list_tags", no_tags, {"ResourceArn": canvas["AppArn"]})
        cw.add_response("get_metric_data", five_hours)  # unchanged: still idle
        stub.add_response("delete_app", {}, key("ana", "Canvas", "default", "UserProfileName"))
        bo = describe("bo", "Canvas", "default", None, "x", "UserProfileName")
        bo.pop("ResourceSpec")
        stub.add_response("describe_app", bo, key("bo", "Canvas", "default", "UserProfileName"))
        stub.add_response("list_tags", no_tags, {"ResourceArn": bo["AppArn"]})
        # bo came back: the fresh read shows activity a minute ago
        cw.add_response(
            "get_metric_data", canvas_answer({"cv0": [(NOW - timedelta(minutes=5), 60.0)]})
        )
        ledger = SqliteLedger(tmp_path / "ledger.sqlite")
        result = studio_run(aws, [REGION], policy, NOW, apply=True, ledger=ledger)
        stub.assert_no_pending_responses()
        cw.assert_no_pending_responses()
    assert result.errors == []
    outcomes = {a.decision.resource.name: a.outcome for a in result.apps}
    assert outcomes == {
        "ana/Canvas/default": "deleted (the space and its storage are kept)",
        "bo/Canvas/default": "skipped: used again: Canvas activity at 2026-11-29 11:59 UTC, "
        "after the scan; its announcement is cancelled: a new one goes out first",
    }
