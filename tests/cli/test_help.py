"""``--help`` read on an 80-column terminal: whole command descriptions, metavars people read,
no ``%%``, and the options that are easy to misread say what they do."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from sagesaver.cli import app
from sagesaver.core.permissions import CAPABILITIES


def help_pages() -> Iterator[tuple[str, str]]:
    runner = CliRunner()

    def walk(command: object, path: list[str]) -> Iterator[tuple[str, str]]:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert result.exit_code == 0, result.output
        yield " ".join(path) or "sagesaver", result.stdout
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


PAGES = dict(help_pages())


def test_every_command_has_a_help_page() -> None:
    assert {"sagesaver", "scan", "validate", "schedule run", "deploy package"} <= set(PAGES)
    assert len(PAGES) >= 25


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_help_page_fits_and_reads_well(page: str) -> None:
    text = PAGES[page]
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    listing = text.split("Commands:")[1] if "Commands:" in text else ""
    assert not [line for line in listing.splitlines() if line.rstrip().endswith("...")]
    assert "%%" not in text
    options = text.split("Options:")[1] if "Options:" in text else ""
    assert not re.findall(r"<(?:str|int|float|file|path|list\[[a-z]+\])>", options), options


def test_options_that_are_easy_to_misread_say_what_they_do() -> None:
    flat = {page: " ".join(text.split()) for page, text in PAGES.items()}
    for capability in CAPABILITIES:
        assert capability in flat["permissions"]
    install = flat["lifecycle install"]
    assert install.count("must match both (AND)") == 2  # --attach and --attach-tag
    for page in ("run", "backups", "restore", "savings", "report", "schedule run"):
        assert "a file path, or dynamodb://REGION/TABLE" in flat[page], page
    assert "--profile NAME" in flat["scan"]
    assert "--version" in flat["sagesaver"]
