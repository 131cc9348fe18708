"""The Lambda package: reproducible, small, and its handlers run from the zip in a clean
Python environment of the runtime (like Lambda: boto3 and nothing else) against moto."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sagesaver.core.errors import InputError
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.deploy.package import RUNTIME, PackageInfo, build_package, read_manifest
from tests.shifted_clock import OFFSET_VARIABLE, child_env

ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> PackageInfo:
    return build_package(tmp_path_factory.mktemp("pkg") / "sagesaver.zip", ARCH)


def test_package_is_reproducible_small_and_complete(package: PackageInfo, tmp_path: Path) -> None:
    again = build_package(tmp_path / "again.zip", ARCH)
    assert again.sha256 == package.sha256
    assert package.size_bytes < 8 * 1024 * 1024
    names = zipfile.ZipFile(package.path).namelist()
    assert "sagesaver/lambda_handlers.py" in names and "sagesaver/data/prices.json" in names
    assert "sagesaver/agent/autostop.py" in names and "croniter/__init__.py" in names
    assert not [n for n in names if n.startswith(("sagesaver/cli/", "sagesaver/demo/"))]
    for absent in ("sagesaver/cli.py", "sagesaver/demo.py", "sagesaver/aws/simulator.py"):
        assert absent not in names
    assert not any(n.startswith(("boto3/", "botocore/", "typer/", "rich/", "moto/")) for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    machine = "aarch64" if ARCH == "arm64" else "x86_64"
    assert any(n.startswith("pydantic_core/") and machine in n for n in names)


@pytest.mark.slow  # a child process
def test_arm64_package_has_arm_binaries(tmp_path: Path) -> None:
    other = "x86_64" if ARCH == "arm64" else "arm64"
    built = build_package(tmp_path / f"{other}.zip", other)
    machine = "aarch64" if other == "arm64" else "x86_64"
    assert any(
        n.startswith("pydantic_core/_pydantic_core") and machine in n
        for n in zipfile.ZipFile(built.path).namelist()
    )


def test_unknown_architecture_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--architecture sparc"):
        build_package(tmp_path / "x.zip", "sparc")


def test_the_package_names_its_architecture_and_runtime(
    package: PackageInfo, tmp_path: Path
) -> None:
    assert read_manifest(package.path) == {"architecture": ARCH, "runtime": RUNTIME}
    (tmp_path / "other.zip").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a SageSaver Lambda package"):
        read_manifest(tmp_path / "other.zip")


def test_the_runtime_is_a_year_from_deprecation_at_least() -> None:
    """Fails a year before AWS blocks creating functions on the runtime: time to move on."""
    import cfnlint

    data = Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "LmbdRuntimeLifecycle.json"
    lifecycle = json.loads(data.read_text(encoding="utf-8"))[RUNTIME]
    deprecated = datetime.fromisoformat(lifecycle["deprecated"]).replace(tzinfo=timezone.utc)
    assert deprecated - datetime.now(timezone.utc) > timedelta(days=365), lifecycle


def test_handlers_run_from_the_zip_in_a_clean_python_of_the_runtime(
    package: PackageInfo, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    version = RUNTIME.removeprefix("python")
    pythons = sorted(PYENV.glob(f"versions/{version}*/bin/python{version}"))
    assert pythons, f"Python {version} (Lambda's runtime) is needed; pyenv ships it"
    venv = tmp_path / "venv"
    subprocess.run([str(pythons[-1]), "-m", "venv", str(venv)], check=True, timeout=120)
    # Under `--shift-clock` the handlers must share the test's clock: time-machine goes in too.
    shifted = OFFSET_VARIABLE in child_env({})
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "boto3",
         *(["time-machine"] if shifted else [])],
        check=True, timeout=600,
    )  # fmt: skip
    task = tmp_path / "task"
    zipfile.ZipFile(package.path).extractall(task)
    fleet.endpoint("us-east-1", "idle-one", changed=now - timedelta(days=2))
    fleet.notebook("us-east-1", "dev-a", status="Stopped")
    env = child_env({
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        **sim.env("us-east-1"),
        "SAGESAVER_REGIONS": "us-east-1",
        "SAGESAVER_POLICY": "schedules: {s: {start: '0 7 * * *', name_contains: dev-}}",
    })  # fmt: skip
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "import sagesaver.lambda_handlers as h;"
        "print(json.dumps({'idle': h.idle_endpoints({}, None),"
        " 'tick': h.schedule_tick({'schedule': 's'}, None)}))"
    )
    done = subprocess.run(
        # -s -P rather than -I: isolated from the user's site, but PYTHONPATH is honoured.
        [str(venv / "bin" / "python"), "-s", "-P", "-c", script, str(task)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    *logged, last = done.stdout.splitlines()
    result = json.loads(last)  # the handlers' return values, after their JSON log lines
    events = [json.loads(line)["event"] for line in logged]
    assert events.count("run") == 2 and "decision" in events
    assert result["idle"]["ok"] is True
    assert [e["name"] for e in result["idle"]["idle_endpoints"]] == ["idle-one"]
    assert result["tick"]["ok"] is True and result["tick"]["applied"] is False


def test_the_lambda_carries_the_holiday_calendars() -> None:
    """The schedule tick plans ``calendar:`` schedules: the holidays library is shipped, at the
    version the lock pins with its hashes."""
    from sagesaver.deploy.package import LOCK, REQUIREMENTS

    assert any(r.startswith("holidays") for r in REQUIREMENTS)
    lock = LOCK.read_text(encoding="utf-8")
    assert "\nholidays==" in lock and "--hash=sha256:" in lock.split("\nholidays==", 1)[1][:200]
