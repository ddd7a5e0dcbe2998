"""Files written safely: nothing overwritten without ``force``, nothing half-written under the final name.

The leaf every writer uses (tables, keys, signatures, model files, reports); it imports nothing heavier
than the standard library, so the commands that only handle files start fast.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from synthgen.errors import OutputExistsError, SynthgenError


def check_writable(path: str | os.PathLike, *, force: bool) -> Path:
    """Refuse to overwrite an existing file unless ``force``; make sure the folder exists."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists (fix: choose another path or pass --force)")
    if not path.parent.exists():
        raise SynthgenError(f"{path.parent}: no such folder (fix: create it first)")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place.

    On any failure the temporary file is removed, so no partial file ever stands under ``path``.
    """
    final = check_writable(path, force=force)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if final.exists() and not force:  # appeared meanwhile
            raise OutputExistsError(f"{final} already exists (fix: choose another path or pass --force)")
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes, *, force: bool = False, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`), with permissions ``mode`` if given.

    The temporary file is created 0600 and given ``mode`` before ``data`` is written, so a secret is never
    readable by others, not even for a moment.
    """
    with atomic_path(path, force=force) as tmp:
        if mode is not None:
            os.chmod(tmp, mode)
        tmp.write_bytes(data)
    return Path(path)
