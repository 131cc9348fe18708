"""The suite's runner (the Makefile's PYTEST): a test whose worker process crashed is run once
more, on a new worker, and the run goes on; an ordinary failure is never run again.

Why: a segmentation fault in a C extension's memory (seen in CPython's garbage collector,
never reproduced on demand) killed a worker now and then, and with it the whole CI run.
These tests run the Makefile's own options on a small suite in a child process, so the
options cannot drift from what is checked here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a child pytest with its own worker processes

ROOT = Path(__file__).resolve().parent.parent

SUITE = """
import faulthandler
import os
from pathlib import Path

HERE = Path(os.environ["CRASH_DIR"])


def _attempt(name):
    with open(HERE / name, "a") as counter:
        counter.write("x")
    return len((HERE / name).read_text())


def test_crashes_its_worker_the_first_time():
    if _attempt("crash") == 1:
        faulthandler.disable()  # keep the child's output short
        os.abort() if os.environ.get("CRASH_HOW") == "abort" else faulthandler._sigsegv()


def test_passes():
    assert _attempt("ok") >= 1


def test_fails_without_crashing():
    _attempt("fail")
    assert os.environ.get("CRASH_FAIL") != "1", "an ordinary failure"
"""


def makefile_options() -> list[str]:
    """The options the Makefile's PYTEST passes after ``pytest`` (WORKERS set to 2)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    [line] = re.findall(r"^PYTEST := \$\(BIN\)/pytest (.+)$", text, re.MULTILINE)
    return shlex.split(line.replace("$(WORKERS)", "2").replace("$$", "$"))


def run_suite(tmp_path: Path, fail: bool, how: str = "segv") -> tuple[int, str, dict[str, int]]:
    """The small suite run as the Makefile runs the project's (under ``--shift-clock`` the
    child inherits the moved clock, and pytest may count warnings in its summary)."""
    (tmp_path / "test_small.py").write_text(SUITE, encoding="utf-8")
    # The project's addopts (its summary options among them), none of its test paths.
    [addopts] = re.findall(
        r'^addopts = "(.+)"$', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE
    )
    (tmp_path / "pytest.ini").write_text(f"[pytest]\naddopts = {addopts}\n", encoding="utf-8")
    env = {
        **os.environ,
        "CRASH_DIR": str(tmp_path),
        "CRASH_HOW": how,
        "CRASH_FAIL": "1" if fail else "0",
    }
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *makefile_options(), "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a run that hangs after a crash fails here
        check=False,
    )
    attempts = {
        name: len((tmp_path / name).read_text()) if (tmp_path / name).exists() else 0
        for name in ("crash", "ok", "fail")
    }
    return done.returncode, done.stdout + done.stderr, attempts


@pytest.mark.parametrize("how", ["segv", "abort"])
def test_a_crashed_test_runs_again_and_the_run_passes(tmp_path: Path, how: str) -> None:
    code, output, attempts = run_suite(tmp_path, fail=False, how=how)
    assert code == 0, output
    assert attempts == {"crash": 2, "ok": 1, "fail": 1}
    assert re.search(r"\b3 passed, (\d+ warnings?, )?1 rerun\b", output), output
    # The crash is said in the run's output, not hidden: the worker's end and the test run again.
    assert "node down: Not properly terminated" in output, output
    assert "RERUN test_small.py::test_crashes_its_worker_the_first_time" in output, output


def test_an_ordinary_failure_is_not_run_again(tmp_path: Path) -> None:
    code, output, attempts = run_suite(tmp_path, fail=True)
    assert code == 1, output
    assert attempts["fail"] == 1  # once: a failing assertion is never retried
    assert attempts["crash"] == 2
    assert re.search(r"\b1 failed, 2 passed, (\d+ warnings?, )?1 rerun\b", output), output
