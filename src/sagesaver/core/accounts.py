"""The accounts of a fan-out: a file of account ids (``--accounts FILE``); who it says it is
in each (the role session name) and the external id the member role requires. Pure."""

from __future__ import annotations

import re
from pathlib import Path

from sagesaver.core.errors import InputError

ACCOUNT_RE = re.compile(r"^\d{12}$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@/-]{1,64}$")
# What STS accepts (ASCII): an ExternalId of 2 to 1224, a RoleSessionName of 2 to 64 characters.
EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
NOT_IN_SESSION_NAME = re.compile(r"[^\w+=,.@-]+", re.ASCII)
SESSION_NAME_MAX = 64
SESSION_PREFIX = "sagesaver"


def parse_accounts(text: str, source: str) -> list[str]:
    """Twelve-digit account ids, one per line (``#`` starts a comment); duplicates dropped."""
    accounts: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not ACCOUNT_RE.match(line):
            raise InputError(f"{source}:{number}: {line!r} is not a 12-digit AWS account id")
        if line not in accounts:
            accounts.append(line)
    if not accounts:
        raise InputError(f"{source}: no account ids in the file")
    return accounts


def load_accounts(path: Path) -> list[str]:
    """Read and check an accounts file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the accounts file: {exc}") from exc
    return parse_accounts(text, str(path))


def check_role_name(name: str) -> str:
    """An IAM role name (path allowed)."""
    if not ROLE_NAME_RE.match(name):
        raise InputError(f"--role-name {name!r}: not an IAM role name")
    return name


def check_external_id(value: str, setting: str = "--external-id") -> str:
    """An external id STS accepts (``sts:ExternalId``); the error names ``setting``, not the
    value (it is kept out of logs)."""
    if not EXTERNAL_ID_RE.fullmatch(value):
        raise InputError(
            f"{setting}: an external id is 2 to 1224 of the characters A-Z a-z 0-9 _+=,.@:/-"
        )
    return value


def session_name(who: str, prefix: str = SESSION_PREFIX) -> str:
    """``PREFIX-WHO``, a role session name STS accepts (``[\\w+=,.@-]``, at most 64: ``who``'s
    other characters become ``-``, and it is cut to fit); ``PREFIX`` alone without ``who``."""
    cleaned = NOT_IN_SESSION_NAME.sub("-", who).strip("-")
    return (f"{prefix}-{cleaned}" if cleaned else prefix)[:SESSION_NAME_MAX]


def caller_session_name(caller_arn: str) -> str:
    """The session name of a run from the caller's identity (``GetCallerIdentity``'s ARN):
    ``sagesaver-`` and the user's name, the assumed role's session name (an SSO user's
    e-mail, say), the federated user's name, or ``root``; ``sagesaver`` when it says none."""
    parts = caller_arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 and parts[0] == "arn" else ""
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":  # assumed-role/ROLE/SESSION
        who = rest.partition("/")[2]
    elif kind in ("user", "federated-user"):  # user/PATH/NAME
        who = rest.rpartition("/")[2]
    else:
        who = "root" if resource == "root" else ""
    return session_name(who)


def lambda_session_name(function: str) -> str:
    """The session name of a run in Lambda: ``sagesaver-lambda-FUNCTION``."""
    return session_name(function, f"{SESSION_PREFIX}-lambda")
