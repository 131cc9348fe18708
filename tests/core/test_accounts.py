"""Who a fan-out says it is in each member account: the role session name (from the caller's
identity, or the Lambda function's name) and the external id the member role requires."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.accounts import (
    caller_session_name,
    check_external_id,
    lambda_session_name,
)
from sagesaver.core.errors import InputError

# What STS accepts as RoleSessionName: 2 to 64 of [\w+=,.@-] (ASCII letters, digits, _).
SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:iam::123456789012:user/alice", "sagesaver-alice"),
        ("arn:aws:iam::123456789012:user/team/ml/bob", "sagesaver-bob"),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0a1b/carol@example.com",
            "sagesaver-carol@example.com",
        ),
        ("arn:aws-cn:sts::123456789012:assumed-role/ci/run 42/x", "sagesaver-run-42-x"),
        ("arn:aws:sts::123456789012:federated-user/dave", "sagesaver-dave"),
        ("arn:aws:iam::123456789012:root", "sagesaver-root"),
        ("", "sagesaver"),
        ("not an arn", "sagesaver"),
    ],
)
def test_the_session_name_says_who_ran_it(arn: str, name: str) -> None:
    assert caller_session_name(arn) == name


def test_a_long_name_is_cut_to_64_and_the_lambda_says_its_function() -> None:
    long = "arn:aws:iam::123456789012:user/" + "x" * 100
    assert caller_session_name(long) == "sagesaver-" + "x" * 54
    assert lambda_session_name("sagesaver-idle-scan") == "sagesaver-lambda-sagesaver-idle-scan"
    assert lambda_session_name("") == "sagesaver-lambda"
    assert len(lambda_session_name("f" * 64)) == 64


@given(st.text())
def test_any_caller_gives_a_valid_session_name(who: str) -> None:
    for arn in (who, f"arn:aws:iam::123456789012:user/{who}", f"arn:aws:sts::1:assumed-role/{who}"):
        name = caller_session_name(arn)
        assert SESSION_NAME.fullmatch(name), name
        assert name.startswith("sagesaver")
    assert SESSION_NAME.fullmatch(lambda_session_name(who))


def test_an_external_id_is_what_sts_accepts() -> None:
    assert check_external_id("sagesaver-7f3e:team/a=b,c.d@e+f") == "sagesaver-7f3e:team/a=b,c.d@e+f"
    assert check_external_id("x" * 1224) == "x" * 1224
    for bad in ("x", "x" * 1225, "has space", "é-accent", "a\n"):
        with pytest.raises(InputError, match="--external-id: "):
            check_external_id(bad)
    with pytest.raises(InputError, match="SAGESAVER_EXTERNAL_ID: ") as caught:
        check_external_id("secret value", "SAGESAVER_EXTERNAL_ID")
    assert "secret value" not in str(caught.value)  # not echoed to logs
