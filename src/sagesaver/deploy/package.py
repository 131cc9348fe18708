"""The AWS Lambda deployment package: SageSaver and what the Python runtime lacks.

The runtime already has boto3 and its dependencies, so they are left out; the rest is
downloaded as wheels for the chosen architecture (``pip download --only-binary``), at the
versions and hashes of the lock shipped with SageSaver (:data:`LOCK`, written by ``make lock``
from :data:`REQUIREMENTS`; pip refuses any file whose hash differs), unpacked, and zipped with
SageSaver's own modules. The zip is reproducible: sorted entries, fixed
timestamps and permissions, no ``__pycache__``. The command line, the demo and the simulator
are not shipped (the handlers import neither typer nor rich nor moto). The zip carries a
manifest (:data:`MANIFEST`) naming its architecture and runtime, which ``deploy render
--package`` and ``deploy apply --package`` take, so the template always matches the package.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sagesaver.core.errors import InputError

ARCHITECTURES = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# The Lambda runtime: the newest Python that cfn-lint knows and that the tests can run here
# (a test fails a year before AWS blocks creating functions on it).
PYTHON_VERSION = "3.13"
RUNTIME = f"python{PYTHON_VERSION}"
MANIFEST = "sagesaver/lambda-package.json"
# What the handlers import, beyond boto3 (which the Lambda runtime provides).
REQUIREMENTS = (
    "pydantic>=2.6,<3",
    "PyYAML>=6.0,<7",
    "platformdirs>=4,<5",
    "croniter>=2.0,<8",
    "tzdata>=2024.1",
    "holidays>=0.107,<1",  # the schedule tick plans schedules with a calendar
)
# REQUIREMENTS resolved for the runtime, pinned with every file's hash (``make lock``).
LOCK = Path(__file__).resolve().parent.parent / "data" / "lambda-requirements.txt"
# Distributions the Lambda Python runtime already has (boto3 and its dependencies).
PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "six", "urllib3"}
)
# Parts of the package only the command line uses (folders end with a slash).
LEFT_OUT = ("cli/", "demo/", "__main__.py")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class PackageInfo:
    """What was built."""

    path: Path
    size_bytes: int
    sha256: str
    files: int
    wheels: tuple[str, ...]


def _distribution(wheel: Path) -> str:
    return wheel.name.split("-", 1)[0].lower().replace("-", "_")


def download_wheels(directory: Path, architecture: str) -> list[Path]:
    """Wheels of :data:`REQUIREMENTS` and their dependencies for Lambda's platform, as
    pinned and hashed in :data:`LOCK`."""
    if architecture not in ARCHITECTURES:
        raise InputError(
            f"--architecture {architecture}: use one of {', '.join(sorted(ARCHITECTURES))}"
        )
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--platform", ARCHITECTURES[architecture],
        "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "--require-hashes", "--no-deps", "--dest", str(directory), "-r", str(LOCK),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip download failed: {done.stderr.strip()[-2000:]}")
    return sorted(w for w in directory.glob("*.whl") if _distribution(w) not in PROVIDED)


def _package_files(source: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_dir() or "__pycache__" in relative or path.suffix == ".pyc":
            continue
        if relative in LEFT_OUT or relative.startswith(
            tuple(p for p in LEFT_OUT if p.endswith("/"))
        ):
            continue
        files[f"sagesaver/{relative}"] = path.read_bytes()
    return files


def _wheel_files(wheels: list[Path]) -> dict[str, bytes]:
    files = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.endswith("/") or "__pycache__" in name or name.endswith(".pyc"):
                    continue
                files[name] = archive.read(name)
    return files


def write_zip(output: Path, files: dict[str, bytes]) -> None:
    """A reproducible zip: sorted names, fixed times and permissions."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])


def read_manifest(package: Path) -> dict[str, str]:
    """The architecture and runtime a package was built for (:class:`InputError` when the
    file is not a SageSaver Lambda package)."""
    try:
        with zipfile.ZipFile(package) as archive:
            manifest = json.loads(archive.read(MANIFEST))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise InputError(
            f"--package {package}: not a SageSaver Lambda package (build one with "
            f"'sagesaver deploy package'): {exc}"
        ) from exc
    if manifest.get("architecture") not in ARCHITECTURES or not str(
        manifest.get("runtime", "")
    ).startswith("python3."):
        raise InputError(f"--package {package}: its manifest is not one SageSaver writes")
    return {"architecture": manifest["architecture"], "runtime": manifest["runtime"]}


def build_package(
    output: Path, architecture: str = "x86_64", progress: Callable[[str], None] | None = None
) -> PackageInfo:
    """Build the Lambda zip at ``output`` (``progress`` hears of each step)."""
    say = progress or (lambda _: None)
    source = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="sagesaver-wheels-") as tmp:
        say(f"downloading the wheels for {RUNTIME} on {architecture} (pip)")
        wheels = download_wheels(Path(tmp), architecture)
        say(f"{len(wheels)} wheels downloaded; writing {output}")
        files = _wheel_files(wheels)
        names = tuple(w.name for w in wheels)
    files.update(_package_files(source))
    manifest = {"architecture": architecture, "runtime": RUNTIME}
    files[MANIFEST] = (json.dumps(manifest, sort_keys=True) + "\n").encode()
    write_zip(output, files)
    data = output.read_bytes()
    return PackageInfo(
        path=output,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        files=len(files),
        wheels=names,
    )
