"""The layout rules that no linter checks: file sizes, and what of moto the product imports."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "sagesaver"
MAX_LINES = 800
# The on-instance agent is installed by a lifecycle configuration as ONE standard-library
# file (docs/ARCHITECTURE.md): it cannot be split into modules like the rest.
ONE_FILE_BY_DESIGN = {"agent/autostop.py"}
# The simulator starts moto's server and seeds moto's state through its backend registry;
# nothing else of moto (its parsers, serializers, response classes, models) is imported, so
# a moto release cannot change the simulator's answers by changing its internals.
MOTO_ALLOWED = {"moto.moto_server.werkzeug_app", "moto.backends"}


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_file_under_src_is_longer_than_800_lines() -> None:
    long = {
        path.relative_to(SRC).as_posix(): n
        for path in _sources()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert set(long) <= ONE_FILE_BY_DESIGN, long


def test_src_imports_only_motos_server_and_backend_registry() -> None:
    moto = {
        path.relative_to(SRC).as_posix(): sorted(
            m for m in _imported(path) if m == "moto" or m.startswith("moto.")
        )
        for path in _sources()
    }
    used = {m for modules in moto.values() for m in modules}
    assert used <= MOTO_ALLOWED, {p: m for p, m in moto.items() if set(m) - MOTO_ALLOWED}
    assert {p for p, m in moto.items() if m} <= {
        p for p in moto if p.startswith("demo/")
    }  # and only the simulator does


def test_src_never_imports_the_benchmarks_or_the_tests() -> None:
    leaks = {
        path.relative_to(SRC).as_posix(): sorted(
            m for m in _imported(path) if m.split(".")[0] in ("benchmarks", "tests")
        )
        for path in _sources()
    }
    assert not {p: m for p, m in leaks.items() if m}
