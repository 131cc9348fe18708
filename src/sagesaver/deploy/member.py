"""The role each member account needs for a fan-out (``--accounts``/``--organization``), as a
CloudFormation template (``sagesaver deploy render --member-role``), to roll out with a StackSet.

:func:`member_role_template` trusts one principal only: the caller's role (``--caller-role``),
and only from its organisation (``aws:PrincipalOrgID``), with the external id when one is given
(``sts:ExternalId``). Its inline policies are what a run does in a member
(:func:`member_capabilities`), one per capability as ``sagesaver permissions`` prints them
(:func:`sagesaver.core.permissions.capability_documents`: scoped to the member's own resources,
with the code's guards as explicit ``Deny`` statements). The caller keeps what it does itself:
the digest, the prices, the organisation's accounts and the ``sts:AssumeRole``.

Pure: no AWS calls, no clock.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sagesaver.core.accounts import check_external_id, check_role_name
from sagesaver.core.errors import InputError
from sagesaver.core.partitions import one_partition
from sagesaver.core.permissions import ROLE_ARN_RE, capability_documents
from sagesaver.core.policy import Policy
from sagesaver.deploy.iam import FUNCTIONS
from sagesaver.deploy.names import IDLE_SCAN

MEMBER_ROLE = "MemberRole"
ORG_ID_RE = re.compile(r"o-[a-z0-9]{10,32}")
# What a run does with the caller's own credentials, never in a member account.
CALLER_ONLY = frozenset({"notify", "live-prices", "fan-out", "all-regions"})
# IAM's quota on the inline policies of one role, together (whitespace not counted).
INLINE_POLICY_LIMIT = 10_240
ACCOUNT = "${AWS::AccountId}"


def member_capabilities(policy: Policy) -> list[str]:
    """The capabilities a run (``sagesaver run``, the idle-scan function) uses in a member
    account under ``policy``: the scan, and the acts the policy asks for (deleting endpoints,
    releasing warm pools)."""
    return [c for c in FUNCTIONS[IDLE_SCAN].capabilities_for(policy) if c not in CALLER_ONLY]


def _caller_partition(caller_role: str) -> str:
    match = ROLE_ARN_RE.match(caller_role)
    if match is None:
        raise InputError(
            f"--caller-role {caller_role}: give the ARN of the role that runs SageSaver "
            "(arn:PARTITION:iam::ACCOUNT:role/NAME)"
        )
    return match["partition"]


def _in_account(resource: Any) -> Any:
    """A Resource with the member's account id (``Fn::Sub``; any other ``${`` literal)."""
    if isinstance(resource, list):
        return [_in_account(r) for r in resource]
    if isinstance(resource, str) and ACCOUNT in resource:
        literal = resource.replace("${", "${!").replace("${!AWS::AccountId}", ACCOUNT)
        return {"Fn::Sub": literal}
    return resource


def _inline_policies(policy: Policy, partition: str) -> list[dict[str, Any]]:
    documents = capability_documents(
        member_capabilities(policy),
        regions=policy.regions or ["*"],
        account=ACCOUNT,
        partition=partition,
        delete_config=policy.endpoints.delete_config,
        tags=policy.endpoints.tags,
        policy=policy,
    )
    size = sum(len(json.dumps(d, separators=(",", ":"))) for d in documents.values())
    if size > INLINE_POLICY_LIMIT:
        raise InputError(
            f"the member role's policies take {size} characters, more than IAM's "
            f"{INLINE_POLICY_LIMIT} for one role's inline policies (each region repeats its "
            "ARNs): name fewer regions in the policy, or none (its ARNs then name every region)"
        )
    for document in documents.values():
        for statement in document["Statement"]:
            statement["Resource"] = _in_account(statement["Resource"])
    return [
        {"PolicyName": f"sagesaver-{name}", "PolicyDocument": document}
        for name, document in documents.items()
    ]


def member_role_template(
    policy: Policy,
    caller_role: str,
    org_id: str,
    *,
    role_name: str = "SageSaverExecution",
    external_id: str | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """The CloudFormation template (a plain ``dict``) of the role ``role_name`` (a path
    allowed: ``ml/SageSaverExecution``) that ``caller_role`` assumes in each member account,
    from the organisation ``org_id`` only, with ``external_id`` when given. The stack's
    ``region``, the policy's regions and the caller must be of one partition. Raises
    :class:`InputError` naming the option that is wrong."""
    partition = _caller_partition(caller_role)
    if not ORG_ID_RE.fullmatch(org_id):
        raise InputError(f"--org-id {org_id}: an organisation id is o- and 10 to 32 of a-z, 0-9")
    path, _, name = check_role_name(role_name).rpartition("/")
    if not name:
        raise InputError(f"--role-name {role_name!r}: not an IAM role name")
    if external_id is not None:
        check_external_id(external_id)
    regions = one_partition(
        {"--region": [region] if region else [], "regions": policy.regions}, "--member-role"
    )
    if regions is not None and regions != partition:
        raise InputError(
            f"--caller-role {caller_role} is in partition {partition}, the regions in "
            f"{regions}: a role is assumed within its own partition"
        )
    condition: dict[str, str] = {"aws:PrincipalOrgID": org_id}
    if external_id is not None:
        condition["sts:ExternalId"] = external_id
    trust = {
        "Sid": "OnlyTheCallerFromItsOrganisation",
        "Effect": "Allow",
        "Principal": {"AWS": caller_role},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": condition},
    }
    properties: dict[str, Any] = {"RoleName": name}
    if path:
        properties["Path"] = f"/{path.strip('/')}/"
    properties.update(
        {
            "Description": f"SageSaver in a member account, assumed by {caller_role} from "
            f"{org_id} only",
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]},
            "Policies": _inline_policies(policy, partition),
        }
    )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "SageSaver: the role a fan-out assumes in each member account",
        "Resources": {MEMBER_ROLE: {"Type": "AWS::IAM::Role", "Properties": properties}},
        "Outputs": {
            "RoleArn": {
                "Description": "The member role",
                "Value": {"Fn::GetAtt": [MEMBER_ROLE, "Arn"]},
            }
        },
    }
