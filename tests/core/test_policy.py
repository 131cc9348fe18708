from __future__ import annotations

from pathlib import Path

import pytest

from sagesaver.core.errors import PolicyError
from sagesaver.core.policy import DEFAULT_PROTECT_TAG, Policy, load_policy, parse_policy

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def test_no_file_gives_the_defaults() -> None:
    policy = load_policy(None)
    assert policy.endpoints.idle_hours == 24
    assert policy.endpoints.min_age == 24
    assert policy.endpoints.protect_tag == DEFAULT_PROTECT_TAG
    assert policy.endpoints.action == "notify"
    assert policy.notify.sns_topic_arn is None


def test_issue_example_parses() -> None:
    policy = parse_policy(
        """
endpoints:
  idle_hours: 24
  exclude: ["prod-*"]
  tags: {team: ml}
  action: notify
notify:
  sns_topic_arn: arn:aws:sns:us-east-1:123456789012:sagesaver
"""
    )
    assert policy.endpoints.exclude == ["prod-*"]
    assert policy.endpoints.tags == {"team": "ml"}
    assert policy.notify.topic_region == "us-east-1"


def test_min_age_defaults_to_idle_hours_and_can_differ() -> None:
    assert parse_policy("endpoints: {idle_hours: 72}").endpoints.min_age == 72
    assert parse_policy("endpoints: {idle_hours: 72, min_age_hours: 0}").endpoints.min_age == 0


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate(path: Path) -> None:
    assert isinstance(load_policy(path), Policy)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("endpoints:\n  idle_hour: 3\n", "<policy>:2: endpoints.idle_hour: unknown key"),
        (
            "endpoints:\n  idle_hours: -1\n",
            "<policy>:2: endpoints.idle_hours: Input should be greater than 0",
        ),
        ("endpoints:\n  idle_hours: 0\n", "endpoints.idle_hours: Input should be greater than 0"),
        (
            "endpoints:\n  idle_hours: lots\n",
            "endpoints.idle_hours: Input should be a valid number",
        ),
        (
            "endpoints:\n  min_age_hours: -2\n",
            "endpoints.min_age_hours: Input should be greater than or equal to 0",
        ),
        (
            "endpoints:\n  max_invocations: -1\n",
            "endpoints.max_invocations: Input should be greater than or equal to 0",
        ),
        (
            "endpoints:\n  max_invocations: 2.5\n",
            "endpoints.max_invocations: Input should be a valid integer",
        ),
        ("min_hourly_cost: -0.5\n", "min_hourly_cost: Input should be greater than or equal to 0"),
        ("min_hourly_cost: 0.5 USD\n", "min_hourly_cost: Input should be a valid number"),
        (
            "endpoints:\n  action: destroy\n",
            "endpoints.action: Input should be 'notify' or 'delete'",
        ),
        ("endpoints:\n  exclude: 'prod-*'\n", "endpoints.exclude: Input should be a valid list"),
        (
            "endpoints:\n  exclude: ['[prod']\n",
            "endpoints.exclude.0: pattern '[prod' has an unclosed '['",
        ),
        ("endpoints:\n  tags: [team]\n", "endpoints.tags: Input should be a valid dictionary"),
        (
            "notify:\n  sns_topic_arn: not-an-arn\n",
            "notify.sns_topic_arn: 'not-an-arn' is not an SNS topic ARN",
        ),
        (
            "regions: [us-east-1, mars-north-7x]\n",
            "regions: 'mars-north-7x' is not an AWS region name",
        ),
        ("bogus: 1\n", "<policy>:1: bogus: unknown key"),
        ("- a\n- b\n", "the policy must be a mapping of keys, not a list"),
        ("endpoints: {idle_hours: 3\n", "<policy>:2: not valid YAML"),
    ],
)
def test_invalid_policies_name_key_and_line(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert expected in str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path)  # a directory


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_policy(path) == Policy()


@pytest.mark.parametrize(
    ("name", "tags", "selected"),
    [
        ("dev-x", {}, True),
        ("prod-api", {}, False),
        ("dev-x", {"team": "ml"}, True),
    ],
)
def test_selection_by_globs(name: str, tags: dict[str, str], selected: bool) -> None:
    policy = parse_policy("endpoints: {exclude: ['prod-*']}")
    assert policy.endpoints.selects(name, tags)[0] is selected


def test_tags_must_all_match_and_values_may_be_globs() -> None:
    rules = parse_policy("endpoints: {tags: {team: ml, env: 'dev*'}}").endpoints
    assert rules.selects("a", {"team": "ml", "env": "dev-1"}) == (True, "selected by the policy")
    ok, reason = rules.selects("a", {"team": "ml"})
    assert not ok and "'env' is missing" in reason
    ok, reason = rules.selects("a", {"team": "data", "env": "dev"})
    assert not ok and "team=data" in reason


def test_include_restricts_names() -> None:
    rules = parse_policy("endpoints: {include: ['team-a-*']}").endpoints
    assert rules.selects("team-a-x", {})[0]
    assert not rules.selects("team-b-x", {})[0]


@pytest.mark.parametrize(
    ("value", "protected"),
    [("true", True), ("", True), ("yes", True), ("false", False), ("0", False)],
)
def test_protect_tag_values(value: str, protected: bool) -> None:
    rules = Policy().endpoints
    assert rules.is_protected({DEFAULT_PROTECT_TAG: value}) is protected
    assert rules.is_protected({}) is False


def test_warm_pools_are_only_reported_unless_the_policy_releases_them() -> None:
    pools = Policy().jobs.warm_pools
    assert (pools.action, pools.idle_hours, pools.protect_tag) == (
        "notify",
        0.5,
        DEFAULT_PROTECT_TAG,
    )
    chosen = parse_policy(
        "jobs:\n  warm_pools: {action: release, idle_hours: 2, exclude: ['prod-*']}\n"
    ).jobs.warm_pools
    assert (chosen.action, chosen.idle_hours, chosen.exclude) == ("release", 2, ["prod-*"])
    assert chosen.selects("prod-train", {}) == (False, "name matches exclude 'prod-*'")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("jobs: {warm_pools: {action: delete}}", "jobs.warm_pools.action"),
        ("jobs: {warm_pools: {idle_hours: 7}}", "jobs.warm_pools.idle_hours"),  # a pool lives 6 h
        ("jobs: {warm_pools: {grace_hours: 1}}", "jobs.warm_pools.grace_hours: unknown key"),
    ],
)
def test_bad_warm_pool_settings_name_their_key(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment.replace(".", r"\.")):
        parse_policy(text)


def test_the_readme_policy_reference_is_a_valid_policy() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    reference = readme.split("## Policy reference", 1)[1]
    block = reference.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = parse_policy(block, "README.md")
    assert policy.jobs.warm_pools.action == "notify"  # the documented default
    assert policy.jobs.warm_pools.idle_hours == 0.5


def test_a_policy_nested_too_deeply_is_bad_input_not_a_crash() -> None:
    """YAML nested thousands deep overflows the parser's recursion: a clear error (exit 2
    in the CLI), never a RecursionError traceback."""
    text = "endpoints: " + "[" * 20000 + "]" * 20000 + "\n"
    with pytest.raises(PolicyError, match="nested too deeply"):
        parse_policy(text, "deep.yaml")


def test_thresholds_default_to_todays_rules_and_parse() -> None:
    assert parse_policy("").endpoints.max_invocations == 0
    assert parse_policy("").min_hourly_cost is None
    policy = parse_policy("min_hourly_cost: 0.5\nendpoints: {max_invocations: 10}\n")
    assert (policy.min_hourly_cost, policy.endpoints.max_invocations) == (0.5, 10)
