"""A small evaluator of IAM identity policies, for the tests of the policies SageSaver prints
and deploys: an explicit ``Deny`` wins, then an ``Allow``, else the request is implicitly
denied (AWS's evaluation logic within one account, identity policies only).

It reads what those policies use: ``Action`` and ``Resource`` with the wildcards ``*`` and
``?`` (actions case-insensitive, ARNs case-sensitive), the policy variable ``${$}``, a
condition value's policy variables (``${aws:PrincipalOrgID}``, from the request's keys: one the
request lacks makes a positive operator fail) and the condition operators below, with AWS's
rules for a key the request lacks (a negated operator matches it, ``Null`` tells it, a
positive one does not match it) and for sets (``ForAnyValue:``). An operator it does not
know raises: it is never taken as matching.
(moto's ``IAMPolicy.is_action_permitted`` knows ``StringEquals`` only, ignores the others,
and denies when an ``Allow``'s condition fails: not usable here.)

A resource policy (a KMS key policy) is read by :func:`decide_for`, for one :class:`Caller`:
a statement applies to the callers its ``Principal`` names (``*``; an ARN; a service). One
naming an account (``arn:aws:iam::ACCOUNT:root`` or ``ACCOUNT``) lets that account's IAM
policies grant, which are not evaluated here: it applies to the account's root only, never by
itself to a role or user of the account. The
caller's ARN and tags are the request's ``aws:PrincipalArn``, ``aws:PrincipalAccount`` and
``aws:PrincipalTag/KEY`` (a role's session carries its role's tags and ARN:
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["allow", "deny", "implicit-deny"]
Value = str | Sequence[str]


@dataclass(frozen=True)
class Request:
    """One call: its action, the ARN it acts on and its condition keys (tags, tag keys)."""

    action: str
    resource: str
    context: Mapping[str, Value] = field(default_factory=dict)

    @classmethod
    def on(
        cls, action: str, resource: str, tags: Mapping[str, str] | None = None, **more: Value
    ) -> Request:
        """A request on a resource carrying ``tags`` (``aws:ResourceTag/KEY``)."""
        context: dict[str, Value] = {f"aws:ResourceTag/{k}": v for k, v in (tags or {}).items()}
        context.update({k.replace("__", ":"): v for k, v in more.items()})
        return cls(action, resource, context)


def _wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    pattern = pattern.replace("${$}", "$")
    if "${" in pattern:
        raise ValueError(f"policy variable in {pattern!r}: not evaluated here")
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _literal(value: str) -> str:
    if "${" in value.replace("${$}", ""):
        raise ValueError(f"policy variable in {value!r}: not evaluated here")
    return value.replace("${$}", "$")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _equals(wanted: str, got: str) -> bool:
    return _literal(wanted) == got


def _equals_ignore_case(wanted: str, got: str) -> bool:
    return _literal(wanted).lower() == got.lower()


def _like(wanted: str, got: str) -> bool:
    return _wildcard(wanted).match(got) is not None


MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "Bool": _equals_ignore_case,
    "StringEquals": _equals,
    "StringEqualsIgnoreCase": _equals_ignore_case,
    "StringLike": _like,
    "ArnLike": _like,
    "ArnEquals": _equals,
}
NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotLike": "ArnLike",
}


def _context_value(context: Mapping[str, Value], key: str) -> Value | None:
    for name, value in context.items():
        if name.lower() == key.lower():  # condition key names are case-insensitive
            return value
    return None


# A policy variable naming a request key (``${aws:PrincipalOrgID}``), not ``${$}``, ``${*}``...
_VARIABLE = re.compile(r"\$\{([A-Za-z][^}]*)\}")


def _resolved(values: list[str], context: Mapping[str, Value]) -> list[str] | None:
    """``values`` with their policy variables replaced from ``context``; None when the
    request lacks one (AWS: the condition then does not match)."""
    resolved = []
    for value in values:
        names = _VARIABLE.findall(value)
        for name in names:
            found = _context_value(context, name)
            if not isinstance(found, str):
                return None
            value = value.replace(f"${{{name}}}", found.replace("$", "${$}"))
        resolved.append(value)
    return resolved


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, Value]) -> bool:
    got = _context_value(context, key)
    values = [str(w) for w in _as_list(wanted)]
    if any(_VARIABLE.search(v) for v in values):
        if operator not in MATCHERS:
            raise ValueError(f"{operator} with a policy variable: not evaluated here")
        found = _resolved(values, context)
        if found is None:
            return False
        values = found
    if operator == "Null":
        [expected] = values
        return (got is None) == (expected == "true")
    qualifier, _, base = operator.rpartition(":")
    if base.endswith("IfExists"):
        raise ValueError(f"{operator}: not evaluated here")
    if qualifier:
        if qualifier not in ("ForAnyValue", "ForAllValues") or base not in MATCHERS:
            raise ValueError(f"{operator}: not evaluated here")
        items = [] if got is None else [str(v) for v in _as_list(got)]
        match = MATCHERS[base]
        if qualifier == "ForAnyValue":
            return any(match(w, item) for item in items for w in values)
        return all(any(match(w, item) for w in values) for item in items)
    if got is not None and not isinstance(got, str):
        raise ValueError(f"{key} has several values: use ForAnyValue or ForAllValues")
    if base in NEGATED:
        if got is None:
            return True
        return not any(MATCHERS[NEGATED[base]](w, got) for w in values)
    if base not in MATCHERS:
        raise ValueError(f"{operator}: not evaluated here")
    return got is not None and any(MATCHERS[base](w, got) for w in values)


def _applies(statement: Mapping[str, Any], request: Request, *, principal: bool = False) -> bool:
    if "NotAction" in statement or "NotResource" in statement or "NotPrincipal" in statement:
        raise ValueError("NotAction, NotResource and NotPrincipal are not evaluated here")
    if "Principal" in statement and not principal:
        raise ValueError("Principal: a resource policy, evaluate it with decide_for")
    if not any(
        _wildcard(a, ignore_case=True).match(request.action) for a in _as_list(statement["Action"])
    ):
        return False
    if not any(_wildcard(r).match(request.resource) for r in _as_list(statement["Resource"])):
        return False
    for operator, keys in statement.get("Condition", {}).items():
        for key, wanted in keys.items():
            if not _condition_holds(operator, key, wanted, request.context):
                return False
    return True


def decide(document: Mapping[str, Any], request: Request) -> Decision:
    """What IAM decides for ``request`` under the identity policy ``document`` alone."""
    allowed = False
    for statement in _as_list(document["Statement"]):
        if _applies(statement, request):
            if statement["Effect"] == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "implicit-deny"


def denying_sids(document: Mapping[str, Any], request: Request) -> list[str]:
    """The ``Sid`` of each ``Deny`` statement that refuses ``request``."""
    return [
        str(s.get("Sid"))
        for s in _as_list(document["Statement"])
        if s["Effect"] == "Deny" and _applies(s, request)
    ]


@dataclass(frozen=True)
class Caller:
    """Who makes a request: an IAM role (its ARN, not its session's) or user, or a service
    (``service``: its principal, e.g. ``dynamodb.amazonaws.com``), with its tags."""

    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)
    service: str | None = None

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    def context(self) -> dict[str, Value]:
        """The request keys the caller sets."""
        context: dict[str, Value] = {
            "aws:PrincipalArn": self.arn,
            "aws:PrincipalAccount": self.account,
        }
        context.update({f"aws:PrincipalTag/{k}": v for k, v in self.tags.items()})
        return context


_ACCOUNT_ROOT = re.compile(r"arn:aws(?:-cn|-us-gov)?:iam::(\d{12}):root")


def _names(principal: Any, caller: Caller) -> bool:
    """Whether a statement's ``Principal`` names ``caller``."""
    if principal == "*":
        return caller.service is None
    if not isinstance(principal, Mapping) or not set(principal) <= {"AWS", "Service"}:
        raise ValueError(f"Principal {principal!r}: not evaluated here")
    for value in _as_list(principal.get("Service", [])):
        if caller.service is not None and value == caller.service:
            return True
    if caller.service is not None:
        return False
    root = _ACCOUNT_ROOT.fullmatch(caller.arn)
    for value in _as_list(principal.get("AWS", [])):
        if value == "*" or value == caller.arn:
            return True
        if re.fullmatch(r"\d{12}", value) and root is not None and root.group(1) == value:
            return True
        if ("*" in value or "?" in value) and value != "*":
            raise ValueError(f"wildcard in Principal {value!r}: not allowed by AWS")
    return False


def decide_for(document: Mapping[str, Any], request: Request, caller: Caller) -> Decision:
    """What the resource policy ``document`` alone decides for ``request`` made by ``caller``
    (the caller's keys added to the request's)."""
    called = Request(request.action, request.resource, {**caller.context(), **request.context})
    allowed = False
    for statement in _as_list(document["Statement"]):
        if "Principal" not in statement:
            raise ValueError("a resource policy's statement names its Principal")
        if _names(statement["Principal"], caller) and _applies(statement, called, principal=True):
            if statement["Effect"] == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "implicit-deny"
