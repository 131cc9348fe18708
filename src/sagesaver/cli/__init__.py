"""The ``sagesaver`` command: one module per command group, each command parsing its options,
calling one pipeline, and rendering the result.

Exit codes: 0 success, 1 some resources or regions failed, 2 bad input (nothing changed).
"""

from __future__ import annotations

import os
import sqlite3
import sys

# Importing the command modules registers their commands, in the order ``--help`` lists them.
# isort: off
from sagesaver.cli import scan  # noqa: F401  (scan, run, demo)
from sagesaver.cli import schedule  # noqa: F401
from sagesaver.cli import lifecycle  # noqa: F401
from sagesaver.cli import studio  # noqa: F401
from sagesaver.cli import report  # noqa: F401  (report, backtest)
from sagesaver.cli import deploy  # noqa: F401
from sagesaver.cli import ledger  # noqa: F401  (backups, restore, savings)
from sagesaver.cli import permissions  # noqa: F401  (permissions, version)
from sagesaver.cli import validate  # noqa: F401
from sagesaver.cli import prices  # noqa: F401  (prices fetch)

# isort: on
from sagesaver.cli.common import EXIT_FAILURES, app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point. A ledger file that fails where a command does not expect it
    (a full disk, a file locked past the time-out) ends the command with its message and exit
    code 1, never a traceback; the runs themselves report such failures per resource. A reader
    that closed stdout (``| head -1``) ends it quietly (``common.ClosedPipe``)."""
    try:
        try:
            app()
        finally:
            _flush_stdout()
    except sqlite3.Error as exc:
        sys.stderr.write(f"sagesaver: the ledger file failed: {type(exc).__name__}: {exc}\n")
        sys.exit(EXIT_FAILURES)


def _flush_stdout() -> None:
    """Write what stdout still holds; when its reader is gone, send the rest to /dev/null, so
    that Python's own flush at exit fails no more (no "Exception ignored", no exit 120) and the
    command's exit code stands."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
