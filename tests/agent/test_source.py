"""The agent file itself: Python 3.7 syntax, standard library only, and its pure helpers."""

from __future__ import annotations

import ast
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.agent import autostop
from tests.agent_fakes import AGENT, NOW, Agent, FakeJupyter, iso, kernel

SOURCE = AGENT.read_text(encoding="utf-8")
LAZY_THIRD_PARTY: set[str] = set()  # none: the stop is signed here (hashlib, hmac, urllib)


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            names.add(node.module or "")
    return names


def test_parses_as_python_3_7() -> None:
    ast.parse(SOURCE, feature_version=(3, 7))


def test_imports_only_the_standard_library() -> None:
    modules = imported_modules(ast.parse(SOURCE))
    roots = {name.split(".")[0] for name in modules}
    assert not any(root == "sagesaver" for root in roots)
    third_party = {root for root in roots if root not in sys.stdlib_module_names}
    assert third_party <= LAZY_THIRD_PARTY - {"__future__"}
    assert "__future__" in roots


@pytest.mark.slow  # a child process
def test_boto3_and_subprocess_are_imported_lazily() -> None:
    """Start-up stays cheap: heavy or rarely needed modules are imported where they are used."""
    tree = ast.parse(SOURCE)
    module_level: set[str] = set()
    for node in tree.body:  # the TYPE_CHECKING block is an ast.If, so it is not counted
        if isinstance(node, ast.Import):
            module_level.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module_level.add(node.module or "")
    assert "json" in module_level
    lazy = {"ssl", "subprocess", "typing", "shutil", "urllib.request", "hashlib", "hmac"}
    assert not module_level & lazy


@pytest.mark.parametrize(
    "newer",
    [
        ".removeprefix(",
        ".removesuffix(",
        "functools.cache",
        "zoneinfo",
        ":=",
        "=}",
        "graphlib",
        "tomllib",
    ],
)
def test_avoids_newer_library_features(newer: str) -> None:
    code_lines = [line for line in SOURCE.splitlines() if not line.lstrip().startswith("#")]
    assert not any(newer in line for line in code_lines if '"""' not in line), newer


def test_no_newer_annotations_at_runtime() -> None:
    """PEP 604/585 forms are fine in annotations (strings here), never in expressions."""
    tree = ast.parse(SOURCE)
    annotations: set[int] = set()
    for node in ast.walk(tree):
        for child in (getattr(node, "annotation", None), getattr(node, "returns", None)):
            if child is not None:
                annotations.update(id(sub) for sub in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in annotations:
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            assert not any(
                isinstance(side, ast.Constant) and side.value is None
                for side in (node.left, node.right)
            ), ast.unparse(node)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            assert node.value.id not in {"list", "dict", "tuple", "set", "frozenset", "type"}, (
                ast.unparse(node)
            )


def test_declares_its_permissions_and_documents_itself() -> None:
    assert autostop.REQUIRED_IAM_ACTIONS == (
        "sagemaker:DescribeNotebookInstance",
        "sagemaker:StopNotebookInstance",
    )
    doc = autostop.__doc__ or ""
    for needle in (
        "--time",
        "--ignore-connections",
        "--count-connections",
        "--max-busy-hours",
        "SAGESAVER_AGENT_IMDS_URL",
        "IMDSv2",
        "Signature V4",
        "--cpu-threshold",
        "--gpu-threshold",
        "--state-file",
        "--metadata-file",
        "--dry-run",
        "SAGESAVER_AGENT_NOW",
        "SAGESAVER_AGENT_PROC_STAT",
        "SAGESAVER_AGENT_HOME",
        "SAGESAVER_AGENT_CPU_SAMPLE_SECONDS",
        "keep-alive",
        "Exit codes",
    ):
        assert needle.lower() in doc.lower(), needle
    assert autostop.__doc__ == ast.get_docstring(ast.parse(SOURCE), clean=False)
    package_doc = (AGENT.parent / "__init__.py").read_text(encoding="utf-8").strip()
    assert package_doc.startswith('"""') and package_doc.count("\n") == 0


def python37() -> str | None:
    """A working Python 3.7 interpreter on this machine, if there is one."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = sorted(str(path) for path in root.glob("versions/3.7*/bin/python3.7"))
    which = shutil.which("python3.7")
    for candidate in [*reversed(candidates), *([which] if which else [])]:
        try:
            version = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
        except OSError:
            continue
        if version == "(3, 7)":
            return candidate
    return None


PYTHON37 = python37()


@pytest.mark.slow  # a child process
def test_runs_on_python_3_7(tmp_path: Path) -> None:
    interpreter = PYTHON37
    assert interpreter is not None, "a Python 3.7 interpreter is needed (pyenv ships 3.7.16)"
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n", encoding="utf-8")
    server = FakeJupyter()
    try:
        server.jupyter(
            kernels=[kernel(last_activity=iso(NOW - timedelta(hours=2), digits=0))],
            sessions=[{"id": "s", "path": "a.ipynb", "kernel": None}],
            terminals=[{"name": "1", "last_activity": iso(NOW - timedelta(hours=3), digits=9)}],
        )
        agent = Agent(tmp_path)
        env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(stat))
        old = agent("--dry-run", url=server.url, cpu=10, python=[interpreter], env=env)
        new = agent("--dry-run", url=server.url, cpu=10, env=env)
    finally:
        server.close()
    assert old.code == 0, old.stderr
    assert old.result == new.result
    assert old.result["action"] == "would-stop"
    bad = agent("--time", "0", python=[interpreter], defaults=False)
    assert bad.code == 2 and "--time" in bad.stderr


# ------------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
        ("2024-05-01T10:00:00.5Z", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=timezone.utc)),
        (
            "2024-05-01T10:00:00.123456789Z",
            datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc),
        ),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
        ("2024-05-01T05:30:00.000001-0430", datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=timezone.utc)),
        ("2024-05-01 10:00", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=timezone.utc)),
        (" 2024-05-01T10:00:00z\n", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    parsed = autostop.parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z", "2024-05-01T10Z"]
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        autostop.parse_timestamp(text)


@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.sampled_from(
            [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
        ),
    ),
    digits=st.integers(0, 9),
)
def test_parse_timestamp_round_trips(moment: datetime, digits: int) -> None:
    offset = moment.strftime("%z")
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + (f"{moment.microsecond:06d}" + "987")[:digits]
    text += "Z" if offset == "+0000" else offset[:3] + ":" + offset[3:]
    parsed = autostop.parse_timestamp(text)
    kept = int((f"{moment.microsecond:06d}" + "000")[: min(digits, 6)].ljust(6, "0"))
    assert parsed == moment.replace(microsecond=kept)


def test_parse_moment_epoch_and_iso() -> None:
    assert autostop.parse_moment("1900000000") == datetime.fromtimestamp(1900000000, timezone.utc)
    assert autostop.parse_moment("1900000000.5\n").microsecond == 500000
    assert autostop.parse_moment("2030-01-01T00:00:00Z").year == 2030
    with pytest.raises(ValueError):
        autostop.parse_moment("99999999999999999999999")


# ------------------------------------------------------------------------------- TLS, HTTP


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "::1", "localhost."])
def test_self_signed_accepted_on_this_machine_only(host: str) -> None:
    assert autostop.accepts_self_signed(host)
    context = autostop.tls_context(host)
    assert context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    "host", ["example.com", "127.0.0.2", "10.0.0.1", "localhost.example.com", "my-localhost"]
)
def test_certificates_verified_elsewhere(host: str) -> None:
    assert not autostop.accepts_self_signed(host)
    context = autostop.tls_context(host)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "base"),
    [
        ("https://localhost:8443", "localhost", 8443, True, "/"),
        ("http://127.0.0.1:8888/jupyter/default", "127.0.0.1", 8888, False, "/jupyter/default/"),
        ("https://[::1]/", "::1", 443, True, "/"),
        ("HTTP://example.com", "example.com", 80, False, "/"),
    ],
)
def test_server_url(url: str, host: str, port: int, tls: bool, base: str) -> None:
    server = autostop.Server(url)
    assert (server.host, server.port, server.tls, server.base_path) == (host, port, tls, base)


@pytest.mark.parametrize(
    "url",
    [
        "localhost:8443",
        "ftp://x",
        "https://user:pw@localhost",
        "https://h/?token=abc",
        "https://h:0",
    ],
)
def test_server_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        autostop.Server(url)


def test_parse_answer() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]extra"
    assert autostop.parse_answer(raw) == (200, b"[]")
    assert autostop.parse_answer(b"HTTP/1.0 404 Not Found\r\nX: y\r\n\r\n{}") == (404, b"{}")
    with pytest.raises(autostop.CheckError, match="truncated"):
        autostop.parse_answer(b"HTTP/1.1 200 OK\r\ncontent-length:  10\r\n\r\n[1, 2")
    for broken in (b"garbage", b"SMTP ready\r\n\r\n", b"HTTP/1.1\r\n\r\n", b""):
        with pytest.raises(autostop.CheckError, match="not an HTTP answer"):
            autostop.parse_answer(broken)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_complete_answer_is_not_held_by_an_open_connection(raw: bytes) -> None:
    ours, server = socket.socketpair()
    with ours, server:
        server.sendall(raw)
        started = time.monotonic()
        assert autostop.read_answer(ours, started + 5) == raw
        assert time.monotonic() - started < 1


def test_incomplete_answer_times_out() -> None:
    ours, server = socket.socketpair()
    with ours, server:
        server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n[1, 2")
        with pytest.raises(autostop.CheckError, match="in time"):
            autostop.read_answer(ours, time.monotonic() + 0.2)


# ----------------------------------------------------------------------------- CPU, state


def test_cpu_counters_and_usage(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  10 2 3 80 5 0 0 0 0 0\ncpu0 10 2 3 80 5 0 0 0 0 0\nintr 1\n", encoding="utf-8"
    )
    assert autostop.read_cpu_counters(str(stat)) == [(15, 100)]
    stat.write_text(
        "cpu  30 0 0 170 0\ncpu0 10 2 3 80 5 0 0 0 0 0\ncpu1 10 0 0 80 0 1 2 3\n"
        "intr 1\ncpu9 1 1 1 1\n",
        encoding="utf-8",
    )
    assert autostop.read_cpu_counters(str(stat)) == [(15, 100), (16, 96)]  # per core
    stat.write_text("cpu  10 2 3 80 5\n", encoding="utf-8")
    assert autostop.read_cpu_counters(str(stat)) == [(15, 100)]  # no cpuN lines: the total
    assert autostop.cpu_usage([(15, 100)], [(65, 200)]) == 50.0
    assert autostop.cpu_usage([(15, 100)], [(15, 100)]) == 0.0
    assert autostop.cpu_usage([(500, 1000)], [(15, 100)]) is None  # rebooted
    assert autostop.cpu_usage([(0, 100), (0, 100)], [(90, 200), (10, 200)]) == 90.0  # busiest
    assert autostop.cpu_usage([(0, 100)], [(90, 200), (10, 200)]) is None  # cores changed
    for broken in ("intr 1\n", "", "cpu  1 2\n", "cpu0 1 2 x 4\n"):
        stat.write_text(broken, encoding="utf-8")
        with pytest.raises(ValueError):
            autostop.read_cpu_counters(str(stat))


def test_state_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "deep" / "state.json")
    latest = autostop.Evidence(NOW, "kernel k (idle)")
    autostop.save_state(path, latest, autostop.CpuSample([(5, 10), (6, 12)], NOW), NOW)
    again, cpu, problem = autostop.load_state(path)
    assert problem is None
    assert again is not None and (again.at, again.what) == (NOW, "kernel k (idle)")
    assert cpu is not None and (cpu.cores, cpu.at) == ([(5, 10), (6, 12)], NOW)
    autostop.save_state(path, None, None, NOW)
    assert autostop.load_state(path) == (None, None, None)
    assert autostop.load_state(str(tmp_path / "missing.json")) == (None, None, None)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "[]",
        '{"version": 99}',
        '{"version": 1, "cpu": [1, 2, "2030-01-01T00:00:00Z"]}',  # before per-core samples
        '{"version": 2, "cpu": {"busy": "x"}}',
        '{"version": 2, "cpu": [1, 2]}',
        '{"version": 2, "cpu": [[[1, "x"]], "2030-01-01T00:00:00Z"]}',
        '{"version": 2, "last_activity": [5, "x"]}',
        '{"version": 2, "last_activity": "2030"}',
    ],
)
def test_corrupt_state(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")
    latest, cpu, problem = autostop.load_state(str(path))
    assert (latest, cpu) == (None, None)
    assert problem is not None and "is corrupt" in problem


def test_state_file_falls_back_to_a_writable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    unwritable = str(blocker / "sagesaver" / "autostop-state.json")
    fallback = str(tmp_path / "state" / "sagesaver" / "autostop-state.json")
    assert autostop.choose_state_file([unwritable, fallback]) == fallback
    assert Path(fallback).parent.is_dir()


def test_default_fallback_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert autostop.fallback_state_file() == str(tmp_path / "sagesaver" / "autostop-state.json")
    monkeypatch.delenv("XDG_STATE_HOME")
    assert autostop.fallback_state_file().endswith(".local/state/sagesaver/autostop-state.json")


# ------------------------------------------------------------------------------ options


@pytest.mark.slow  # the agent runs as a child process
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--time", "0"],
        ["--time", "-5"],
        ["--time", "soon"],
        ["--time", "nan"],
        ["--time", "inf"],
        ["--time", "60", "--cpu-threshold", "101"],
        ["--time", "60", "--cpu-threshold", "-1"],
        ["--time", "60", "--gpu-threshold", "150"],
        ["--time", "60", "--gpu-threshold", "nan"],
        ["--time", "60", "--url", "localhost:8443"],
        ["--time", "60", "--url", "https://localhost:99999"],
        ["--time", "60", "--token", "two words"],
        ["--time", "60", "--max-busy-hours", "0"],
        ["--time", "60", "--max-busy-hours", "inf"],
    ],
)
def test_bad_options_exit_2(tmp_path: Path, args: list[str]) -> None:
    run = Agent(tmp_path)(*args, defaults=False)
    assert run.code == 2
    assert run.stdout == ""
    assert "error:" in run.stderr
    assert len(run.stderr.strip().splitlines()[-1]) < 200


@pytest.mark.slow  # the agent runs as a child process
def test_bad_now_seam_exits_2(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    run = agent("--time", "60", env=agent.env(SAGESAVER_AGENT_NOW="soon"), defaults=False)
    assert run.code == 2
    assert "SAGESAVER_AGENT_NOW" in run.stderr


@pytest.mark.slow  # the agent runs as a child process
def test_bad_url_message_does_not_echo_the_url(tmp_path: Path) -> None:
    run = Agent(tmp_path)("--time", "60", "--url", "https://h/?token=hush", defaults=False)
    assert run.code == 2
    assert "hush" not in run.stderr


@pytest.mark.slow  # the agent runs as a child process
def test_help_mentions_every_option(tmp_path: Path) -> None:
    run = Agent(tmp_path)("--help", defaults=False)
    assert run.code == 0
    for option in (
        "--time",
        "--url",
        "--token",
        "--ignore-connections",
        "--count-connections",
        "--max-busy-hours",
        "--dry-run",
    ):
        assert option in run.stdout
