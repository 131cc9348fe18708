from __future__ import annotations

import json
from pathlib import Path

from sagesaver.core.permissions import CAPABILITIES, actions_for, policy_document

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_lists_every_declared_action() -> None:
    missing = sorted(
        action
        for actions in CAPABILITIES.values()
        for action in actions
        if f"`{action}`" not in README
    )
    assert missing == []


def test_policy_document_is_exact_and_has_no_wildcard_actions() -> None:
    document = json.loads(policy_document(["scan", "notify"]))
    [statement] = document["Statement"]
    assert statement["Action"] == actions_for(["scan", "notify"])
    assert "sns:Publish" in statement["Action"]
    assert not any("*" in action for action in statement["Action"])
