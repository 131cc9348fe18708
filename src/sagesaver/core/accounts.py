"""The accounts of a fan-out: a file of account ids (``--accounts FILE``). Pure."""

from __future__ import annotations

import re
from pathlib import Path

from sagesaver.core.errors import InputError

ACCOUNT_RE = re.compile(r"^\d{12}$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@/-]{1,64}$")


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
