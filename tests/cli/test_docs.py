"""The English and the Chinese README stay in step: each names every command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main

from sagesaver.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _commands(command: Any, prefix: tuple[str, ...] = ()) -> list[str]:
    if hasattr(command, "commands"):
        found: list[str] = []
        for name, sub in sorted(command.commands.items()):
            if not getattr(sub, "hidden", False):
                found += _commands(sub, (*prefix, name))
        return found
    return [" ".join(prefix)]


def test_every_command_is_in_both_readmes() -> None:
    commands = _commands(typer.main.get_command(app))
    assert {"scan", "run", "schedule run", "deploy render", "lifecycle install"} <= set(commands)
    for readme in ("README.md", "README.zh-CN.md"):
        text = (ROOT / readme).read_text(encoding="utf-8")
        missing = [c for c in commands if f"sagesaver {c}" not in text]
        assert missing == [], f"{readme} does not mention {missing}"


def test_the_chinese_readme_is_linked_and_covers_the_seed_workflows() -> None:
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    chinese = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "(README.zh-CN.md)" in english
    for needed in ("make demo", "make test", "cn-north-1", "--offline-prices", "price_source"):
        assert needed in chinese and needed in english, needed
    for workflow in ("工作流一", "工作流二", "工作流三"):
        assert workflow in chinese
