"""tests/iam_evaluator.py on resource policies (:func:`decide_for`): who a statement's
``Principal`` names, the caller's ``aws:PrincipalArn`` and ``aws:PrincipalTag/KEY``, and
``Bool``; what it does not evaluate raises rather than passing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.iam_evaluator import Caller, Request, decide, decide_for

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/team-a-Worker-X1"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(condition: dict[str, Any], principal: Any = None, action: str = "kms:Encrypt") -> Any:
    return {
        "Effect": "Allow",
        "Principal": principal if principal is not None else {"AWS": "*"},
        "Action": action,
        "Resource": "*",
        "Condition": condition,
    }


TAGGED = policy(allow({"StringEquals": {"aws:PrincipalTag/team": "a"}}))


def test_a_principal_tag_condition_holds_only_for_a_caller_with_that_tag_value() -> None:
    encrypt = Request("kms:Encrypt", KEY)
    assert decide_for(TAGGED, encrypt, Caller(ROLE, {"team": "a"})) == "allow"
    assert decide_for(TAGGED, encrypt, Caller(ROLE, {"team": "b"})) == "implicit-deny"
    assert decide_for(TAGGED, encrypt, Caller(ROLE, {"owner": "a"})) == "implicit-deny"
    assert decide_for(TAGGED, encrypt, Caller(ROLE)) == "implicit-deny"
    # Tag values compare case-sensitively with StringEquals; the key's name does not.
    assert decide_for(TAGGED, encrypt, Caller(ROLE, {"team": "A"})) == "implicit-deny"
    assert decide_for(TAGGED, encrypt, Caller(ROLE, {"TEAM": "a"})) == "allow"
    assert decide_for(TAGGED, Request("kms:Decrypt", KEY), Caller(ROLE, {"team": "a"})) == (
        "implicit-deny"
    )


def test_the_callers_arn_and_account_are_request_keys() -> None:
    document = policy(
        allow(
            {
                "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/team-a-*"},
                "StringEquals": {"aws:PrincipalAccount": ACCOUNT},
            }
        )
    )
    encrypt = Request("kms:Encrypt", KEY)
    assert decide_for(document, encrypt, Caller(ROLE)) == "allow"
    other = Caller(f"arn:aws:iam::{ACCOUNT}:role/team-b-Worker-X1")
    assert decide_for(document, encrypt, other) == "implicit-deny"
    stranger = Caller("arn:aws:iam::210987654321:role/team-a-Worker-X1")
    assert decide_for(document, encrypt, stranger) == "implicit-deny"
    # A key the request sets itself wins over the caller's (a test may pose as anyone).
    posed = Request("kms:Encrypt", KEY, {"aws:PrincipalAccount": "210987654321"})
    assert decide_for(document, posed, Caller(ROLE)) == "implicit-deny"


def test_a_statement_applies_to_the_callers_its_principal_names() -> None:
    encrypt = Request("kms:Encrypt", KEY)
    named = policy({**allow({}), "Principal": {"AWS": [ROLE]}})
    assert decide_for(named, encrypt, Caller(ROLE)) == "allow"
    assert decide_for(named, encrypt, Caller(f"{ROLE}2")) == "implicit-deny"
    # The account's root lets IAM policies grant (not evaluated): no role is let by it alone.
    for root in (f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT):
        delegated = policy({**allow({}), "Principal": {"AWS": root}})
        assert decide_for(delegated, encrypt, Caller(ROLE)) == "implicit-deny"
        assert decide_for(delegated, encrypt, Caller(f"arn:aws:iam::{ACCOUNT}:root")) == "allow"
    service = policy({**allow({}), "Principal": {"Service": "logs.amazonaws.com"}})
    logs = Caller(f"arn:aws:iam::{ACCOUNT}:root", service="logs.amazonaws.com")
    assert decide_for(service, encrypt, logs) == "allow"
    assert decide_for(service, encrypt, Caller(ROLE)) == "implicit-deny"
    assert decide_for(TAGGED, encrypt, Caller(ROLE, {"team": "a"}, "logs.amazonaws.com")) == (
        "implicit-deny"
    )
    # An explicit Deny wins.
    deny = {**allow({"StringEquals": {"aws:PrincipalTag/team": "a"}}), "Effect": "Deny"}
    both = policy(allow({}), deny)
    assert decide_for(both, encrypt, Caller(ROLE, {"team": "a"})) == "deny"
    assert decide_for(both, encrypt, Caller(ROLE, {"team": "b"})) == "allow"


def test_bool_conditions_compare_true_and_false() -> None:
    document = policy(allow({"Bool": {"kms:GrantIsForAWSResource": "true"}}, None, "kms:*"))
    grant = Request("kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": "true"})
    assert decide_for(document, grant, Caller(ROLE)) == "allow"
    refused = Request("kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": "false"})
    assert decide_for(document, refused, Caller(ROLE)) == "implicit-deny"
    assert decide_for(document, Request("kms:CreateGrant", KEY), Caller(ROLE)) == "implicit-deny"


@pytest.mark.parametrize(
    "principal",
    [{"AWS": f"arn:aws:iam::{ACCOUNT}:role/team-*"}, {"Federated": "cognito-identity"}, "any"],
)
def test_what_it_does_not_evaluate_raises(principal: Any) -> None:
    with pytest.raises(ValueError):
        decide_for(policy(allow({}, principal)), Request("kms:Encrypt", KEY), Caller(ROLE))


def test_identity_and_resource_policies_are_not_confused() -> None:
    with pytest.raises(ValueError, match="decide_for"):
        decide(TAGGED, Request("kms:Encrypt", KEY))
    identity = {"Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}]}
    with pytest.raises(ValueError, match="Principal"):
        decide_for(identity, Request("kms:Encrypt", KEY), Caller(ROLE))
