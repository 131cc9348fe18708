from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from sagesaver.core.digest import MAX_MESSAGE_BYTES, MAX_SUBJECT_CHARS, build_digest, clean_subject
from sagesaver.core.model import Action, Decision, Kind, Resource, Variant

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)


def decision(
    name: str, cost: float | None, action: Action = Action.NOTIFY, region: str = "us-east-1"
) -> Decision:
    resource = Resource(
        kind=Kind.ENDPOINT,
        name=name,
        arn=f"arn:aws:sagemaker:{region}:123456789012:endpoint/{name}",
        region=region,
        account="123456789012",
        status="InService",
        created=NOW,
        modified=NOW,
        variants=(Variant("AllTraffic", "ml.m5.large", 2),),
    )
    return Decision(resource, action, "idle-endpoint", "idle", True, 30.0, cost)


def test_nothing_to_notify_gives_no_message() -> None:
    assert build_digest([decision("a", 1.0, Action.KEEP)], NOW) == []


def test_digest_lists_idle_endpoints_most_expensive_first_with_totals() -> None:
    messages = build_digest(
        [
            decision("cheap", 0.1),
            decision("dear", 3.0, region="eu-west-1"),
            decision("kept", 9.0, Action.KEEP),
        ],
        NOW,
    )
    assert len(messages) == 1
    body = messages[0].body
    assert body.index("- dear (eu-west-1)") < body.index("- cheap (us-east-1)")
    assert "kept" not in body
    assert "Total: $3.10 per hour, $2,232.00 per 30 days." in body
    assert "2 x ml.m5.large" in body and "idle for 30.0 h" in body
    assert messages[0].subject == "SageSaver: 2 idle endpoints, $3.10/h wasted"


def test_unknown_prices_are_said() -> None:
    [message] = build_digest([decision("a", None), decision("b", 1.0)], NOW)
    body = message.body
    assert "Total: $1.00 per hour, $720.00 per 30 days, plus 1 with an unknown price" in body
    assert "(1 x no price known)." in body  # why, even when no reason was recorded
    assert "$unknown" not in body and "unknown/h" in body
    assert message.subject == "SageSaver: 2 idle endpoints, $1.00/h wasted + 1 unknown"


def test_each_line_says_what_the_resource_runs_on_as_the_table_does() -> None:
    """A serverless endpoint with provisioned concurrency is not "no instances"; a two-type
    endpoint names both types; an endpoint whose variants were not read says so."""
    serverless = replace(
        decision("sls", None).resource,
        variants=(
            Variant("v", None, 0, serverless=True, provisioned_concurrency=2, memory_mb=4096),
        ),
    )
    mixed = replace(
        decision("mixed", 1.0).resource,
        variants=(Variant("a", "ml.m5.large", 1), Variant("b", "ml.g4dn.xlarge", 2)),
        asynchronous=True,
    )
    unread = replace(decision("unread", None).resource, variants=())
    body = build_digest(
        [
            Decision(r, Action.NOTIFY, "idle-endpoint", "idle", True, 30.0, None)
            for r in (serverless, mixed, unread)
        ],
        NOW,
    )[0].body
    lines = {line.split(" ")[1]: line for line in body.splitlines() if line.startswith("- ")}
    assert "; serverless, 2 provisioned x 4096 MB; " in lines["sls"]
    assert "; 2 x ml.g4dn.xlarge, 1 x ml.m5.large (async); " in lines["mixed"]
    assert "; instances unknown; " in lines["unread"]


def test_the_advice_fits_what_is_reported() -> None:
    """Endpoint advice only where endpoints are reported; otherwise the plain fact."""
    job = replace(
        decision("train-1", 1.0).resource,
        kind=Kind.TRAINING_JOB,
        arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/train-1",
        variants=(),
    )
    released = Decision(job, Action.RELEASE, "warm-pool", "idle pool", True, 1.0, 1.0)
    (alone,) = build_digest([released], NOW)
    assert "Invocations graph" not in alone.body and "Nothing was deleted." in alone.body
    assert "Warm pools to be released are ended in this run" in alone.body
    assert alone.subject.startswith("SageSaver: 1 idle training job,")
    (both,) = build_digest([released, decision("e", 1.0)], NOW)
    assert "Check each endpoint's Invocations graph" in both.body


def test_large_digests_are_split_under_the_sns_limit() -> None:
    decisions = [decision(f"endpoint-with-a-rather-long-name-{i:05d}", 1.0) for i in range(3000)]
    messages = build_digest(decisions, NOW)
    assert len(messages) > 1
    for index, message in enumerate(messages, start=1):
        assert len(message.body.encode()) <= MAX_MESSAGE_BYTES
        assert len(message.subject) <= MAX_SUBJECT_CHARS
        assert message.subject.endswith(f"(part {index}/{len(messages)})")
    listed = sum(m.body.count("\n- endpoint-with") for m in messages)
    assert listed == 3000


def test_subject_is_ascii_single_line_and_short() -> None:
    subject = clean_subject("Coût\nidle " + "x" * 200)
    assert len(subject) == MAX_SUBJECT_CHARS
    assert subject.isascii() and "\n" not in subject and subject.endswith("...")


def test_metric_period_granularity() -> None:
    from datetime import timedelta

    from sagesaver.aws.metrics import period_for

    assert period_for(NOW - timedelta(hours=24), NOW) == 86400
    assert period_for(NOW - timedelta(seconds=10), NOW) == 60
    assert period_for(NOW - timedelta(hours=24, seconds=1), NOW) == 86460
    assert period_for(NOW - timedelta(days=20, seconds=1), NOW) % 300 == 0
    assert period_for(NOW - timedelta(days=100, seconds=1), NOW) % 3600 == 0
    assert period_for(NOW - timedelta(days=100, seconds=1), NOW) >= 100 * 86400


def test_every_kind_has_its_words() -> None:
    """A kind added without its noun and heading fails here, not in a digest or a table."""
    from sagesaver.core.model import Kind

    for kind in Kind:
        assert kind.noun and kind.heading and kind.noun != kind.heading
