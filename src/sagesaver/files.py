"""Files SageSaver writes: readable by their owner only.

Caches, ledgers, reports and price files hold account ids, resource names, backups of model
containers (their environments may hold secrets) and what things cost: each is written 0600,
and each folder SageSaver creates is 0700, whatever the umask. A folder that is SageSaver's own
(its cache folder) is made 0700 even when an earlier version created it 0755; a folder the user
chose is left as it is. Writes go through a temporary file beside the target, so a reader sees
the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def make_folders(folder: Path, own: bool = False) -> None:
    """Create ``folder`` and its missing parents, each 0700; with ``own``, make ``folder``
    itself 0700 if it already exists."""
    missing = [f for f in [folder, *folder.parents] if not f.exists()]
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            created.mkdir(mode=FOLDER_MODE)
        created.chmod(FOLDER_MODE)  # mkdir's mode is masked by the umask
    if own and not missing:
        folder.chmod(FOLDER_MODE)


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 (``FileExistsError`` if it exists); its folder as
    :func:`make_folders` makes it."""
    make_folders(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))


def write_private(path: Path, data: bytes, own_folder: bool = False) -> None:
    """Replace ``path`` with ``data``, 0600, through a temporary file beside it; raises
    ``OSError`` (the old file, if any, is then left as it was)."""
    make_folders(path.parent, own=own_folder)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, FILE_MODE)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        tmp.chmod(FILE_MODE)  # a leftover temporary file of another mode
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
