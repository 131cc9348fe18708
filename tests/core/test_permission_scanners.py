"""The policies ``sagesaver permissions`` prints, one per capability and their union, checked
by the IAM scanners: parliament (AWS's IAM definitions; with and without its community
auditors) and cloudsplaining (privilege escalation, credentials exposure), as printed and
with every ``Resource`` forced to ``*`` (so that what keeps them safe is the actions and the
conditions, not only the ARNs); and the rules that keep ``iam:PassRole`` and the lifecycle
configurations from being turned against the account.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from cloudsplaining.scan.policy_document import PolicyDocument
from parliament import analyze_policy_string

from sagesaver.core.errors import InputError
from sagesaver.core.permissions import (
    CAPABILITIES,
    LIFECYCLE_CONFIG_NAME,
    LIFECYCLE_CONFIG_WRITES,
    capability_documents,
    role_resources,
    scoped_document,
)
from sagesaver.core.policy import parse_policy
from sagesaver.deploy.template import LIFECYCLE_CONFIG_NAME as STACK_LIFECYCLE_CONFIG
from tests.conftest import Cli
from tests.iam_evaluator import Request, decide

ACCOUNT = "123456789012"
MODEL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/models/endpoint-model"
POLICY = parse_policy(
    """
endpoints: {action: delete, delete_config: true, tags: {team: ml}, exclude: ["prod-*"]}
studio_apps: {action: delete, exclude: ["shared"]}
jobs: {warm_pools: {action: release, exclude: ["keep-*"]}}
""",
    "scanned",
)
OPTIONS: dict[str, Any] = {
    "regions": ["us-east-1", "eu-west-1"],
    "account": ACCOUNT,
    "topic_arn": f"arn:aws:sns:us-east-1:{ACCOUNT}:admins",
    "delete_config": True,
    "tags": {"team": "ml"},
    "policy": POLICY,
    "pass_roles": [MODEL_ROLE],
}
EVERYTHING = list(CAPABILITIES)
WITHOUT_LIFECYCLE = [c for c in EVERYTHING if c != "lifecycle"]


def printed() -> dict[str, dict[str, Any]]:
    """Every policy a user can print: one per capability, the union of all of them (without
    --pass-role, as the CLI allows it with lifecycle), and the union with it (without
    lifecycle)."""
    documents = capability_documents(EVERYTHING, **OPTIONS)
    documents["union"] = scoped_document(EVERYTHING, **{**OPTIONS, "pass_roles": []})
    documents["union-pass-role"] = scoped_document(WITHOUT_LIFECYCLE, **OPTIONS)
    return documents


def on_star(document: dict[str, Any], *, denies: bool = True) -> dict[str, Any]:
    """``document`` with every Resource ``*`` (its Deny statements left out unless
    ``denies``)."""
    forced = copy.deepcopy(document)
    forced["Statement"] = [
        dict(s, Resource="*") for s in forced["Statement"] if denies or s["Effect"] == "Allow"
    ]
    return forced


def allowed_actions(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}


def cloudsplaining(document: dict[str, Any]) -> dict[str, Any]:
    # cloudsplaining passes over an Allow with a Condition unless told to read it: fan-out's
    # sts:AssumeRole (in the caller's organisation only) must still be found on "*".
    scanned = PolicyDocument(document, flag_conditional_statements=True)
    found = {
        "privilege escalation": sorted(e["type"] for e in scanned.allows_privilege_escalation),
        "credentials exposure": sorted(scanned.credentials_exposure),
    }
    return {k: v for k, v in found.items() if v}


# What a capability is, and so what a scanner must find in it: fan-out exists to assume the
# member role (sts:AssumeRole returns credentials); restore passes the models' role to
# SageMaker (iam:PassRole, a "permissions management" action).
COMMUNITY_FINDINGS = {
    "restore": {("PERMISSIONS_MANAGEMENT_ACTIONS", ("iam:passrole",))},
    "fan-out": {("CREDENTIALS_EXPOSURE", ("sts:assumerole",))},
    "union": {("CREDENTIALS_EXPOSURE", ("sts:assumerole",))},
    "union-pass-role": {
        ("PERMISSIONS_MANAGEMENT_ACTIONS", ("iam:passrole",)),
        ("CREDENTIALS_EXPOSURE", ("sts:assumerole",)),
    },
}


@pytest.mark.parametrize("name", sorted(printed()))
def test_parliament_finds_nothing_but_what_the_capability_is(name: str) -> None:
    document = printed()[name]
    assert analyze_policy_string(json.dumps(document)).findings == [], name
    for variant in (document, on_star(document)):
        scanned = analyze_policy_string(json.dumps(variant), include_community_auditors=True)
        found = {
            (f.issue, tuple(f.location["actions"]))
            for f in scanned.findings
            if f.issue != "RESOURCE_STAR"  # what forcing "*" does, and what it is for
        }
        assert found == COMMUNITY_FINDINGS.get(name, set())


@pytest.mark.parametrize("name", sorted(printed()))
def test_cloudsplaining_finds_no_escalation_as_printed_or_on_star(name: str) -> None:
    document = printed()[name]
    assert cloudsplaining(document) == {}  # the ARNs alone keep every finding away
    expected = {}
    if "sts:AssumeRole" in allowed_actions(document):  # fan-out: on "*", any role
        expected = {"credentials exposure": ["sts:AssumeRole"]}
    assert cloudsplaining(on_star(document)) == expected


def test_on_star_without_its_denies_only_lifecycle_is_an_escalation_path() -> None:
    """cloudsplaining drops every action a Deny names, whatever its condition: so its
    result on "*" says little about a policy with Deny statements. Without them, the one
    path left is the one the lifecycle capability is: writing an on-start script (run as
    root) and attaching it to a notebook instance. What bounds it is not on "*": the script
    only under SageSaver's configuration names, never on a protected notebook, no PassRole."""
    found = {
        name: cloudsplaining(on_star(document, denies=False)).get("privilege escalation")
        for name, document in printed().items()
    }
    path = ["UpdateSageMakerNotebookLifecycleConfig"]
    assert {name: f for name, f in found.items() if f} == {"lifecycle": path, "union": path}


def test_the_old_default_was_an_escalation_path_and_is_no_longer() -> None:
    """The review's finding: PassRole on every role with the notebook and configuration
    writes on "*", in one default policy."""
    old = scoped_document(EVERYTHING, **OPTIONS)
    old["Statement"] = [
        dict(s, Resource=f"arn:aws:iam::{ACCOUNT}:role/*") if "iam:PassRole" in s["Action"] else s
        for s in old["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert "iam:PassRole" in allowed_actions(old)
    escalation = cloudsplaining(on_star(old))["privilege escalation"]
    assert escalation == ["UpdateSageMakerNotebookLifecycleConfig"]
    assert "iam:PassRole" not in allowed_actions(printed()["union"])  # none without --pass-role


# --- iam:PassRole ------------------------------------------------------------------------


NOTEBOOK_CHANGES = LIFECYCLE_CONFIG_WRITES | {"sagemaker:UpdateNotebookInstance"}


def test_pass_role_only_on_the_named_roles_only_to_sagemaker_never_beside_notebook_writes() -> None:
    for name, document in printed().items():
        actions = allowed_actions(document)
        if "iam:PassRole" not in actions:
            continue
        assert name in ("restore", "union-pass-role")
        assert not actions & NOTEBOOK_CHANGES, name
        [grant] = [s for s in document["Statement"] if "iam:PassRole" in s["Action"]]
        assert grant["Action"] == ["iam:PassRole"]
        assert grant["Resource"] == [MODEL_ROLE]
        assert grant["Condition"] == {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
        }
        other = Request.on("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/Admin")
        assert decide(document, other) == "implicit-deny"
        to_ec2 = Request.on("iam:PassRole", MODEL_ROLE, iam__PassedToService="ec2.amazonaws.com")
        assert decide(document, to_ec2) == "implicit-deny"
        to_sagemaker = Request.on(
            "iam:PassRole", MODEL_ROLE, iam__PassedToService="sagemaker.amazonaws.com"
        )
        assert decide(document, to_sagemaker) == "allow"
    bare = capability_documents(["restore"], **{**OPTIONS, "pass_roles": []})["restore"]
    assert "iam:PassRole" not in allowed_actions(bare)


def test_pass_role_takes_an_arn_or_a_path_and_never_every_role() -> None:
    assert role_resources([MODEL_ROLE], "aws", ACCOUNT) == [MODEL_ROLE]
    assert role_resources(["/sagemaker/"], "aws-cn", ACCOUNT) == [
        f"arn:aws-cn:iam::{ACCOUNT}:role/sagemaker/*"
    ]
    for bad in ("*", "/", f"arn:aws:iam::{ACCOUNT}:role/*", "models", "arn:aws:iam::1:role/x"):
        with pytest.raises(InputError, match="--pass-role"):
            role_resources([bad], "aws", ACCOUNT)
    with pytest.raises(InputError, match="partition aws-cn"):
        role_resources([MODEL_ROLE], "aws-cn", ACCOUNT)


def test_the_cli_keeps_pass_role_apart_from_lifecycle(cli: Cli) -> None:
    both = ["-c", "restore", "-c", "lifecycle", "--pass-role", MODEL_ROLE]
    refused = cli("permissions", "--union", *both)
    assert refused.exit_code == 2 and "cannot share a policy" in refused.stderr
    apart = cli("permissions", *both)
    assert apart.exit_code == 0, apart.stderr
    documents = json.loads(apart.stdout)
    assert "iam:PassRole" in allowed_actions(documents["restore"])
    assert not allowed_actions(documents["restore"]) & NOTEBOOK_CHANGES
    assert "iam:PassRole" not in allowed_actions(documents["lifecycle"])
    bare = cli("permissions", "-c", "restore")
    assert bare.exit_code == 0 and "--pass-role" in bare.stderr
    assert "iam:PassRole" not in allowed_actions(json.loads(bare.stdout)["restore"])
    star = cli("permissions", "-c", "restore", "--pass-role", "*")
    assert star.exit_code == 2 and "never every role" in star.stderr


# --- lifecycle configurations ------------------------------------------------------------


def test_lifecycle_configurations_are_written_only_under_sagesavers_names(cli: Cli) -> None:
    assert LIFECYCLE_CONFIG_NAME == STACK_LIFECYCLE_CONFIG  # the stack's configuration
    document = printed()["lifecycle"]
    [writes] = [s for s in document["Statement"] if set(s["Action"]) == LIFECYCLE_CONFIG_WRITES]
    assert writes["Resource"] == [
        f"arn:aws:sagemaker:{region}:{ACCOUNT}:notebook-instance-lifecycle-config/"
        f"{LIFECYCLE_CONFIG_NAME}"
        for region in ("eu-west-1", "us-east-1")
    ]
    config = "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance-lifecycle-config/{}"
    for action in sorted(LIFECYCLE_CONFIG_WRITES):
        ours = Request.on(action, config.format(LIFECYCLE_CONFIG_NAME))
        theirs = Request.on(action, config.format("team-setup"))
        assert decide(document, ours) == "allow"
        assert decide(document, theirs) == "implicit-deny"
    named = cli("permissions", "-c", "lifecycle", "--lifecycle-config", "stop-idle", "--union")
    assert named.exit_code == 0, named.stderr
    resources = [
        r
        for s in json.loads(named.stdout)["Statement"]
        if set(s["Action"]) == LIFECYCLE_CONFIG_WRITES
        for r in s["Resource"]
    ]
    assert resources
    assert all(r.endswith(":notebook-instance-lifecycle-config/stop-idle") for r in resources)
    bad = cli("permissions", "-c", "lifecycle", "--lifecycle-config", "a*")
    assert bad.exit_code == 2 and "--lifecycle-config" in bad.stderr
