"""Reading the READMEs as a reader does: their fenced code blocks, the command lines in them
(continuation lines joined, the comment kept apart), and the label written above each block
("示例输出（节选）：", "Example:"). Used by the docs tests; no test lives here."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main

from sagesaver.cli import app

ROOT = Path(__file__).resolve().parents[2]
READMES = ("README.md", "README.zh-CN.md")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it opens, its language, its text and the prose line
    written just above it."""

    path: str
    line: int
    lang: str
    text: str
    label: str


@dataclass(frozen=True)
class Line:
    """One command of a shell block: the words as written (continuations joined, the
    comment removed and whitespace collapsed) and the comment that goes with it (its own,
    and the comment-only lines right under it)."""

    where: str
    text: str
    comment: str

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text)

    @property
    def is_sagesaver(self) -> bool:
        return self.words[0].rsplit("/", 1)[-1] == "sagesaver"


def blocks(path: str) -> list[Block]:
    """Every fenced code block of the file ``path`` (relative to the repository)."""
    found: list[Block] = []
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.startswith("```"):
            if opened is not None:
                body.append(line)
            continue
        if opened is None:
            opened, body = (number, line[3:].strip()), []
            continue
        start, lang = opened
        above = [text.strip() for text in lines[: start - 1] if text.strip()]
        found.append(Block(path, start, lang, "\n".join(body), above[-1] if above else ""))
        opened = None
    assert opened is None, f"{path}:{opened[0]}: a code block is never closed"
    return found


def _split_comment(text: str) -> tuple[str, str]:
    """The command and its trailing ``# comment`` (a ``#`` outside quotes, after a space)."""
    quote = ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].strip(), text[index + 1 :].strip()
    return text.strip(), ""


def shell_lines(block: Block) -> list[Line]:
    """The commands of a shell block, in order."""
    found: list[Line] = []
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(block.text.splitlines(), 1):
        if not pending:
            start = block.line + offset
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        command, comment = _split_comment(" ".join([*pending, raw]))
        pending = []
        if command:
            found.append(Line(f"{block.path}:{start}", " ".join(command.split()), comment))
        elif comment and found:  # a comment-only line belongs to the command above it
            last = found[-1]
            found[-1] = Line(last.where, last.text, f"{last.comment} {comment}".strip())
    return found


def sagesaver_lines(path: str) -> list[Line]:
    """Every ``sagesaver`` command of the file's shell blocks; for a YAML file (an example
    policy), the commands its comments show (``# sagesaver ...``)."""
    if path.endswith(".yaml"):
        found = []
        for number, raw in enumerate((ROOT / path).read_text(encoding="utf-8").splitlines(), 1):
            text = raw.strip().lstrip("#").strip()
            if text.startswith("sagesaver "):
                command, comment = _split_comment(text)
                found.append(Line(f"{path}:{number}", " ".join(command.split()), comment))
        return found
    return [
        line
        for block in blocks(path)
        if block.lang in ("sh", "bash", "shell")
        for line in shell_lines(block)
        if line.is_sagesaver
    ]


def without_redirection(words: list[str]) -> tuple[list[str], str | None]:
    """The words before ``> file``, and the file."""
    if ">" in words:
        at = words.index(">")
        return words[:at], words[at + 1]
    return words, None


def leaf_commands() -> dict[str, Any]:
    """Every visible command of the real CLI by its full name (``"schedule run"``)."""
    found: dict[str, Any] = {}

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                if not getattr(sub, "hidden", False):
                    walk(sub, (*prefix, name))
        else:
            found[" ".join(prefix)] = command

    walk(typer.main.get_command(app), ())
    return found


def long_options(command: Any) -> set[str]:
    """The visible ``--long`` options of a command (``--help`` left out)."""
    return {
        option
        for param in command.params
        if not getattr(param, "hidden", False)
        for option in (*param.opts, *getattr(param, "secondary_opts", ()))
        if option.startswith("--") and option != "--help"
    }


def mentions(text: str, option: str) -> bool:
    """Whether ``text`` names ``option`` as a whole word (``--at`` is not in ``--attach``)."""
    return re.search(re.escape(option) + r"(?![\w-])", text) is not None
