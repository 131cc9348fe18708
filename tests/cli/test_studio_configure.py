"""``sagesaver studio configure``: Studio's own idle shutdown set where it is missing, on the
simulator (moto has no user profiles, spaces or UpdateDomain: the simulator adds them at the
wire, ``sagesaver.demo.studio``, with AWS's 60..525,600-minute range and the domain's min and
max enforced)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sagesaver.demo.simulator import Simulator
from tests.conftest import Cli

EAST = "us-east-1"
IDLE = "AppLifecycleManagement"
UPDATES = ("UpdateDomain", "UpdateUserProfile", "UpdateSpace")


def idle_on(minutes: int, enabled: bool = True) -> dict[str, Any]:
    settings: dict[str, Any] = {"IdleTimeoutInMinutes": minutes}
    if enabled:
        settings["LifecycleManagement"] = "ENABLED"
    return {IDLE: {"IdleSettings": settings}}


def domain(sm: Any, name: str, user: dict[str, Any], tags: dict[str, str] | None = None) -> str:
    sm.create_domain(
        DomainName=name,
        AuthMode="IAM",
        DefaultUserSettings={"ExecutionRole": "arn:aws:iam::123456789012:role/studio", **user},
        SubnetIds=["subnet-1"],
        VpcId="vpc-1",
        # without tags unless given (moto alone fails to list a domain's tags then)
        **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
    )
    return f"d-{name}"


def space(sm: Any, domain_id: str, name: str, settings: dict[str, Any], **tags: str) -> None:
    sm.create_space(
        DomainId=domain_id,
        SpaceName=name,
        SpaceSettings=settings,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def profile(sm: Any, domain_id: str, name: str, settings: dict[str, Any], **tags: str) -> None:
    sm.create_user_profile(
        DomainId=domain_id,
        UserProfileName=name,
        UserSettings=settings,
        Tags=[{"Key": k.replace("_", ":"), "Value": v} for k, v in tags.items()],
    )


@pytest.fixture
def sm(sim: Simulator) -> Any:
    """A Studio with two domains: ``d-ml`` without idle shutdown (its JupyterLab default has
    an instance type to keep), ``d-covered`` whose default has it; profiles and spaces with
    and without their own, one protected."""
    client = sim.client("sagemaker", EAST)
    lab = {"JupyterLabAppSettings": {"DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}}}
    ml = domain(client, "ml", lab)
    covered = domain(client, "covered", {"JupyterLabAppSettings": idle_on(120)})
    profile(client, ml, "alice", {})
    profile(client, ml, "bob", {"JupyterLabAppSettings": idle_on(90)})
    profile(client, ml, "carol", {}, sagesaver_protect="true")
    space(client, ml, "team", {"AppType": "JupyterLab"})
    space(
        client,
        ml,
        "editor",
        {"AppType": "CodeEditor", "CodeEditorAppSettings": idle_on(120, False)},
    )
    space(client, ml, "kept-safe", {"AppType": "JupyterLab"}, **{"sagesaver:protect": "yes"})
    space(client, covered, "other", {"AppType": "JupyterLab"})
    sim.middleware.counts.clear()
    return client


def outcomes(doc: dict[str, Any]) -> dict[str, str]:
    return {f"{r['level']}:{r['domain_id']}/{r['name']}": r["outcome"] for r in doc["resources"]}


def space_idle(sm: Any, name: str, domain_id: str = "d-ml") -> Any:
    settings = sm.describe_space(DomainId=domain_id, SpaceName=name)["SpaceSettings"]
    return settings.get("JupyterLabAppSettings", {}).get(IDLE)


def test_the_dry_run_says_what_it_would_set_and_changes_nothing(
    cli: Cli, sim: Simulator, sm: Any
) -> None:
    code, doc = cli.json("studio", "configure", "--idle-minutes", "120", "--region", EAST)
    assert code == 0 and doc["dry_run"] is True and doc["errors"] == []
    assert outcomes(doc) == {
        "domain:d-ml/d-ml": "would set",
        "domain:d-covered/d-covered": "kept",
        # the domain's default, set by this run, covers its profiles and spaces
        "user-profile:d-ml/alice": "kept",
        "user-profile:d-ml/bob": "kept",
        "user-profile:d-ml/carol": "kept",
        "space:d-ml/team": "kept",
        "space:d-ml/editor": "kept",
        "space:d-ml/kept-safe": "kept",
        "space:d-covered/other": "kept",
    }
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["d-ml"]["has"] == "no idle shutdown"
    assert by_name["d-ml"]["sets"] == "JupyterLab, CodeEditor: ENABLED 120 min"
    assert by_name["d-covered"]["has"] == "JupyterLab ENABLED 120 min"
    assert (
        by_name["team"]["reason"] == "the domain's default idle shutdown, set by this run, applies"
    )
    assert by_name["other"]["reason"] == "the domain's default idle shutdown applies"
    assert not set(UPDATES) & set(sim.middleware.counts)
    described = sm.describe_domain(DomainId="d-ml")["DefaultUserSettings"]
    assert IDLE not in described["JupyterLabAppSettings"]
    table = cli("studio", "configure", "--idle-minutes", "120", "--region", EAST)
    assert table.exit_code == 0
    assert (
        "domain d-ml (us-east-1): has no idle shutdown -> would set JupyterLab, CodeEditor: "
        in (table.stdout)
    )
    assert "1 would set" in table.stdout and "dry run: nothing changed" in table.stdout


def test_apply_on_spaces_sets_the_missing_ones_once(cli: Cli, sim: Simulator, sm: Any) -> None:
    args = ("studio", "configure", "--idle-minutes", "120", "--scope", "spaces", "--apply")
    code, doc = cli.json(*args, "--region", EAST)
    assert code == 0 and doc["dry_run"] is False and doc["errors"] == []
    assert outcomes(doc) == {
        "space:d-ml/team": "set",
        "space:d-ml/editor": "kept",  # its own time-out is set
        "space:d-ml/kept-safe": "protected",
        "space:d-covered/other": "kept",  # its domain's default applies
    }
    # a space takes the time-out alone, for its own app type only
    assert space_idle(sm, "team") == {"IdleSettings": {"IdleTimeoutInMinutes": 120}}
    team = sm.describe_space(DomainId="d-ml", SpaceName="team")["SpaceSettings"]
    assert "CodeEditorAppSettings" not in team and team["AppType"] == "JupyterLab"
    assert space_idle(sm, "kept-safe") is None
    assert space_idle(sm, "other", "d-covered") is None
    assert sim.middleware.counts["UpdateSpace"] == 1
    assert not {"UpdateDomain", "UpdateUserProfile"} & set(sim.middleware.counts)
    sim.middleware.counts.clear()
    code, again = cli.json(*args, "--region", EAST)
    assert code == 0 and outcomes(again)["space:d-ml/team"] == "kept"
    assert "UpdateSpace" not in sim.middleware.counts


def test_apply_on_domains_keeps_their_settings_and_the_scan_sees_it(
    cli: Cli, sim: Simulator, sm: Any
) -> None:
    code, before = cli.json("studio", "--region", EAST)
    assert code == 0
    assert {(g["domain_id"], g["space"]) for g in before["idle_shutdown_gaps"]} == {
        ("d-ml", None),
        ("d-ml", "team"),
        ("d-ml", "kept-safe"),
    }
    code, doc = cli.json(
        "studio", "configure", "--idle-minutes", "120", "--min-minutes", "60",
        "--max-minutes", "240", "--scope", "domains", "--apply", "--region", EAST,
    )  # fmt: skip
    assert code == 0
    assert outcomes(doc) == {"domain:d-ml/d-ml": "set", "domain:d-covered/d-covered": "kept"}
    [ml] = [r for r in doc["resources"] if r["name"] == "d-ml"]
    assert ml["sets"] == "JupyterLab, CodeEditor: ENABLED 120 min (users may choose 60-240 min)"
    user = sm.describe_domain(DomainId="d-ml")["DefaultUserSettings"]
    wanted = {
        "LifecycleManagement": "ENABLED",
        "IdleTimeoutInMinutes": 120,
        "MinIdleTimeoutInMinutes": 60,
        "MaxIdleTimeoutInMinutes": 240,
    }
    for key in ("JupyterLabAppSettings", "CodeEditorAppSettings"):
        assert user[key][IDLE] == {"IdleSettings": wanted}
    # what the domain had is kept
    assert user["JupyterLabAppSettings"]["DefaultResourceSpec"] == {"InstanceType": "ml.t3.medium"}
    assert user["ExecutionRole"] == "arn:aws:iam::123456789012:role/studio"
    assert sim.middleware.counts["UpdateDomain"] == 1
    code, after = cli.json("studio", "--region", EAST)
    assert code == 0 and after["idle_shutdown_gaps"] == []


def test_apply_on_profiles_spares_the_protected_and_those_that_have_it(
    cli: Cli, sim: Simulator, sm: Any
) -> None:
    code, doc = cli.json(
        "studio", "configure", "--idle-minutes", "180", "--scope", "profiles", "--apply",
        "--region", EAST,
    )  # fmt: skip
    assert code == 0
    assert outcomes(doc) == {
        "user-profile:d-ml/alice": "set",
        "user-profile:d-ml/bob": "kept",
        "user-profile:d-ml/carol": "protected",
    }
    alice = sm.describe_user_profile(DomainId="d-ml", UserProfileName="alice")["UserSettings"]
    for key in ("JupyterLabAppSettings", "CodeEditorAppSettings"):
        assert alice[key][IDLE] == {
            "IdleSettings": {"LifecycleManagement": "ENABLED", "IdleTimeoutInMinutes": 180}
        }
    bob = sm.describe_user_profile(DomainId="d-ml", UserProfileName="bob")["UserSettings"]
    assert bob["JupyterLabAppSettings"] == idle_on(90)
    carol = sm.describe_user_profile(DomainId="d-ml", UserProfileName="carol")["UserSettings"]
    assert carol == {}
    assert sim.middleware.counts["UpdateUserProfile"] == 1


def test_a_refused_update_is_reported_and_the_others_go_on(
    cli: Cli, sim: Simulator, sm: Any
) -> None:
    """A domain whose users may choose at most 100 minutes (its idle shutdown itself off):
    SageMaker refuses 120 on its space; the other space is still set."""
    limit = {"LifecycleManagement": "DISABLED", "MaxIdleTimeoutInMinutes": 100}
    tight = domain(sm, "tight", {"JupyterLabAppSettings": {IDLE: {"IdleSettings": limit}}})
    space(sm, tight, "narrow", {"AppType": "JupyterLab"})
    result = cli(
        "studio", "configure", "--idle-minutes", "120", "--scope", "spaces", "--apply",
        "--region", EAST, "--output", "json",
    )  # fmt: skip
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    found = outcomes(doc)
    assert found["space:d-tight/narrow"] == "failed"
    assert found["space:d-ml/team"] == "set"
    [error] = doc["errors"]
    assert (error["operation"], error["resource"]) == ("UpdateSpace", "d-tight/narrow")
    assert "above the maximum 100" in error["message"]
    assert space_idle(sm, "narrow", tight) is None
    assert space_idle(sm, "team") == {"IdleSettings": {"IdleTimeoutInMinutes": 120}}


def test_the_policy_selection_and_app_types_are_honoured(
    cli: Cli, sim: Simulator, sm: Any, tmp_path: Path
) -> None:
    space(sm, "d-ml", "notes", {"AppType": "CodeEditor"})
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "studio_apps: {exclude: [team], app_types: [JupyterLab, KernelGateway]}\n",
        encoding="utf-8",
    )
    code, doc = cli.json(
        "studio", "configure", "--idle-minutes", "120", "--scope", "all", "--apply",
        "--policy", str(policy), "--region", EAST,
    )  # fmt: skip
    assert code == 0
    found = outcomes(doc)
    # the domain gets the JupyterLab default only; its profiles and spaces are covered by it
    assert found["domain:d-ml/d-ml"] == "set"
    user = sm.describe_domain(DomainId="d-ml")["DefaultUserSettings"]
    assert IDLE in user["JupyterLabAppSettings"] and "CodeEditorAppSettings" not in user
    code, spaces = cli.json(
        "studio", "configure", "--idle-minutes", "120", "--scope", "spaces", "--apply",
        "--policy", str(policy), "--region", EAST,
    )  # fmt: skip
    assert code == 0
    reasons = {r["name"]: (r["outcome"], r["reason"]) for r in spaces["resources"]}
    # d-ml's default is now set: its spaces are covered
    assert reasons["team"] == ("kept", "the domain's default idle shutdown applies")
    sm.create_domain(
        DomainName="bare", AuthMode="IAM", DefaultUserSettings={}, SubnetIds=["s"], VpcId="v"
    )
    space(sm, "d-bare", "team", {"AppType": "JupyterLab"})
    space(sm, "d-bare", "notes", {"AppType": "CodeEditor"})
    space(sm, "d-bare", "lab", {"AppType": "JupyterLab"})
    code, bare = cli.json(
        "studio", "configure", "--idle-minutes", "120", "--scope", "spaces", "--apply",
        "--policy", str(policy), "--region", EAST,
    )  # fmt: skip
    assert code == 0
    by = {r["name"]: r for r in bare["resources"] if r["domain_id"] == "d-bare"}
    assert (by["team"]["outcome"], by["team"]["reason"]) == (
        "not selected",
        "studio_apps: name matches exclude 'team'",
    )
    assert (by["notes"]["outcome"], by["notes"]["reason"]) == (
        "not selected",
        "its app type CodeEditor is not in studio_apps.app_types",
    )
    assert by["lab"]["outcome"] == "set"
    assert space_idle(sm, "team", "d-bare") is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--idle-minutes", "59"], "--idle-minutes 59: SageMaker accepts 60 to 525600 minutes"),
        (["--idle-minutes", "525601"], "--idle-minutes 525601: SageMaker accepts 60 to"),
        (["--idle-minutes", "120", "--max-minutes", "9999999"], "--max-minutes 9999999:"),
        (["--idle-minutes", "90", "--min-minutes", "120"], "--idle-minutes 90 is below"),
        (["--idle-minutes", "300", "--max-minutes", "240"], "--idle-minutes 300 is above"),
        (
            ["--idle-minutes", "120", "--min-minutes", "300", "--max-minutes", "200"],
            "--min-minutes 300 is above --max-minutes 200",
        ),
        (
            ["--idle-minutes", "120", "--min-minutes", "60", "--scope", "spaces"],
            "use them with --scope domains or all",
        ),
        (["--idle-minutes", "120", "--scope", "every"], "--scope every: choose one of domains"),
        ([], "Missing option '--idle-minutes'"),
    ],
)
def test_bad_input_is_refused_before_any_call(
    cli: Cli, sim: Simulator, args: list[str], fragment: str
) -> None:
    sim.middleware.counts.clear()
    result = cli("studio", "configure", *args, "--region", EAST, "--apply")
    assert result.exit_code == 2, result.stdout
    assert fragment in " ".join(result.stderr.split()), result.stderr
    assert sum(sim.middleware.counts.values()) == 0


def test_a_policy_selecting_no_app_with_idle_shutdown_is_refused(
    cli: Cli, sim: Simulator, tmp_path: Path
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("studio_apps: {app_types: [KernelGateway]}\n", encoding="utf-8")
    sim.middleware.counts.clear()
    result = cli("studio", "configure", "--idle-minutes", "120", "--policy", str(policy), "--apply")
    assert result.exit_code == 2
    assert "selects neither JupyterLab nor CodeEditor" in result.stderr
    assert sum(sim.middleware.counts.values()) == 0
