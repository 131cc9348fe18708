"""Issue 29: every file SageSaver writes is its owner's only (0600, in 0700 folders)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sagesaver.aws.endpoint_configs import FileConfigStore
from sagesaver.aws.prices import FileCache
from sagesaver.files import create_private, write_private
from sagesaver.ledger import SqliteLedger


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most hosts have (022): files 0644 and folders 0755 unless asked otherwise."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_and_the_folders_made_for_it_are_the_owners_only(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.json"
    write_private(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert (mode(target), mode(target.parent), mode(target.parent.parent)) == (0o600, 0o700, 0o700)
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]  # no temporary file left


def test_an_old_public_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    target = tmp_path / "cache.json"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, b"new")
    assert (target.read_text(), mode(target)) == ("new", 0o600)


def test_only_sagesavers_own_folder_is_made_private_when_it_exists(tmp_path: Path) -> None:
    own, chosen = tmp_path / "sagesaver", tmp_path / "reports"
    for folder in (own, chosen):
        folder.mkdir(mode=0o755)
    write_private(own / "prices.json", b"{}", own_folder=True)
    write_private(chosen / "report.html", b"<html>")
    assert (mode(own), mode(chosen)) == (0o700, 0o755)  # the user's folder is theirs to set


def test_a_failed_write_leaves_what_was_there_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("old")
    with pytest.raises(OSError):
        write_private(target, b"new")  # a file cannot replace a folder that holds something
    assert (target / "inside").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_create_private_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    create_private(path)
    assert mode(path) == 0o600
    with pytest.raises(FileExistsError):
        create_private(path)


def test_the_caches_and_the_ledger_are_written_private(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "sagesaver"
    FileConfigStore(cache / "endpoint-configs.json.gz").save(b"\x1f\x8b")
    FileCache(cache / "prices.json").put("k", {"amount": 1.0, "currency": "USD", "at": 0})
    ledger = tmp_path / "state" / "ledger.sqlite"
    SqliteLedger(ledger).mark_seen("endpoint", datetime(2026, 1, 1, tzinfo=timezone.utc))
    for path in (cache / "endpoint-configs.json.gz", cache / "prices.json", ledger):
        assert (mode(path), mode(path.parent)) == (0o600, 0o700), path
